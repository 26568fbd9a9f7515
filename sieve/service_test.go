package sieve

import "testing"

// FuzzService feeds arbitrary payloads to the service key parsers (DNS,
// NTP, SNMP, ICMP echo): no panic, no read beyond the payload, and a key
// only with its kind.
func FuzzService(f *testing.F) {
	f.Add(uint16(53), []byte("\xf7\x6f\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\x06google\x03com\x00\x00\x0f\x00\x01"))
	f.Add(uint16(161), []byte("\x30\x26\x02\x01\x00\x04\x06public\xa0\x19\x02\x01\x26\x02\x01\x00\x02\x01\x00\x30\x0e\x30\x0c\x06\x08\x2b\x06\x01\x02\x01\x01\x02\x00\x05\x00"))
	f.Add(uint16(123), make([]byte, 48))
	f.Add(uint16(0), []byte{8, 0, 0, 0, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, port uint16, p []byte) {
		p = p[:len(p):len(p)] // a read beyond would panic
		var rec Record
		if port == 0 {
			if len(p) == 0 {
				return
			}
			rec.IPVersion, rec.ICMPType = 4, p[0]
			echoTxn(p, 0, len(p), &rec)
		} else {
			rec.DstPort = port
			udpService(p, 0, len(p), &rec)
		}
		if rec.TxnKind == TxnNone && rec.Txn != 0 {
			t.Fatalf("key %x without a kind", rec.Txn)
		}
	})
}
