package alarm

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/gosnmp/gosnmp"

	"github.com/tmon-project/tmon/conf"
)

// The SNMP notification tmon sends (SNMPv2c trap), under the enterprise
// number 32473 that RFC 5612 reserves for documentation: a site that
// registers its own replaces nothing in tmon, its NOC maps these OIDs.
// docs/operations.md lists the variables.
const (
	OIDBase     = ".1.3.6.1.4.1.32473.1"
	OIDCrossed  = OIDBase + ".0.1" // snmpTrapOID of a crossing
	OIDCleared  = OIDBase + ".0.2" // snmpTrapOID of a recovery
	OIDVars     = OIDBase + ".1"   // variables .1 … .9 below
	oidUpTime   = ".1.3.6.1.2.1.1.3.0"
	oidTrapOID  = ".1.3.6.1.6.3.1.1.4.1.0"
	queueLength = 256
)

// Notifier delivers notices to the webhook and the SNMP trap receiver of
// <alarms>, from its own goroutine: the collector never waits for a slow
// receiver. A full queue drops the notice with a log line (the event is
// in the spool regardless).
type Notifier struct {
	al      conf.Alarms
	log     *slog.Logger
	ch      chan Notice
	done    chan struct{}
	client  *http.Client
	start   time.Time
	Dropped atomic.Uint64 // notices lost to a full queue
	Failed  atomic.Uint64 // deliveries that failed after every attempt
}

// NewNotifier starts a Notifier; nil when <alarms> names no receiver.
func NewNotifier(al conf.Alarms, log *slog.Logger) *Notifier {
	if al.Webhook == "" && al.Trap == "" {
		return nil
	}
	n := &Notifier{al: al, log: log, ch: make(chan Notice, queueLength), done: make(chan struct{}),
		client: &http.Client{Timeout: 5 * time.Second}, start: time.Now()}
	go n.run()
	return n
}

// Notify queues a notice; it never blocks.
func (n *Notifier) Notify(x Notice) {
	if n == nil {
		return
	}
	select {
	case n.ch <- x:
	default:
		n.Dropped.Add(1)
		n.log.Error("alarm: notification queue full; notice not sent (the event is in the spool)", "kind", x.Kind, "metric", x.Metric)
	}
}

// Close delivers what is queued (until ctx ends) and stops.
func (n *Notifier) Close(ctx context.Context) {
	if n == nil {
		return
	}
	close(n.ch)
	select {
	case <-n.done:
	case <-ctx.Done():
	}
}

func (n *Notifier) run() {
	defer close(n.done)
	for x := range n.ch {
		if n.al.Webhook != "" {
			n.retry("webhook", x, n.webhook)
		}
		if n.al.Trap != "" {
			n.retry("snmp trap", x, n.trap)
		}
	}
}

// retry makes up to three attempts, one second apart.
func (n *Notifier) retry(what string, x Notice, send func(Notice) error) {
	var err error
	for i := range 3 {
		if i > 0 {
			time.Sleep(time.Second)
		}
		if err = send(x); err == nil {
			return
		}
	}
	n.Failed.Add(1)
	n.log.Error("alarm: "+what+" failed", "kind", x.Kind, "metric", x.Metric, "err", err)
}

func (n *Notifier) webhook(x Notice) error {
	body, err := json.Marshal(x)
	if err != nil {
		return err
	}
	resp, err := n.client.Post(n.al.Webhook, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook %s: %s", n.al.Webhook, resp.Status)
	}
	return nil
}

// TrapVars returns the variables of the trap for x after sysUpTime and
// snmpTrapOID: OIDVars.1 class, .2 hop_from, .3 hop_to, .4 metric, .5 value,
// .6 limit, .7 clear (as text in the metric's unit: "25ms", "0.012"), .8
// collector, .9 interval start (RFC 3339).
func TrapVars(x Notice) []gosnmp.SnmpPDU {
	s := func(i int, v string) gosnmp.SnmpPDU {
		return gosnmp.SnmpPDU{Name: OIDVars + "." + strconv.Itoa(i), Type: gosnmp.OctetString, Value: v}
	}
	f := func(v float64) string {
		if x.Unit == "s" {
			return time.Duration(v * 1e9).String()
		}
		return strconv.FormatFloat(v, 'g', 6, 64)
	}
	return []gosnmp.SnmpPDU{s(1, x.Class), s(2, x.From), s(3, x.To), s(4, x.Metric), s(5, f(x.Value)), s(6, f(x.Limit)),
		s(7, f(x.Clear)), s(8, x.Collector), s(9, x.IntervalStart.UTC().Format(time.RFC3339))}
}

func (n *Notifier) trap(x Notice) error {
	host, port, err := net.SplitHostPort(n.al.Trap)
	if err != nil {
		return err
	}
	p, _ := strconv.ParseUint(port, 10, 16)
	g := &gosnmp.GoSNMP{Target: host, Port: uint16(p), Community: n.al.Community, Version: gosnmp.Version2c,
		Timeout: 2 * time.Second, Retries: 0}
	if err := g.Connect(); err != nil {
		return fmt.Errorf("snmp %s: %w", n.al.Trap, err)
	}
	defer g.Conn.Close()
	oid := OIDCrossed
	if x.Kind == KindCleared {
		oid = OIDCleared
	}
	vars := append([]gosnmp.SnmpPDU{
		{Name: oidUpTime, Type: gosnmp.TimeTicks, Value: uint32(time.Since(n.start) / (10 * time.Millisecond))},
		{Name: oidTrapOID, Type: gosnmp.ObjectIdentifier, Value: oid},
	}, TrapVars(x)...)
	if _, err := g.SendTrap(gosnmp.SnmpTrap{Variables: vars}); err != nil {
		return fmt.Errorf("snmp %s: %w", n.al.Trap, err)
	}
	return nil
}
