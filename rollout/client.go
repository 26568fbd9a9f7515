package rollout

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/tmon-project/tmon/conf"
)

// Client asks collectors, signing with one probe's key.
type Client struct {
	KeyID uint16 // the probe id whose key signs
	Key   []byte // nil: unsigned (a configuration without keys)
}

// ClientFor returns the client a component of cfg uses: a probe signs with
// its own key, a collector or an admin's tmon with the first probe's that
// has one (collectors hold every probe's key).
func ClientFor(cfg *conf.Config, probe string) Client {
	for _, p := range cfg.Probes {
		if p.Name == probe && p.Key != nil {
			return Client{KeyID: p.ID, Key: p.Key}
		}
	}
	for _, p := range cfg.Probes {
		if p.Key != nil {
			return Client{KeyID: p.ID, Key: p.Key}
		}
	}
	return Client{}
}

// KeysOf returns the keys a collector of cfg accepts, by probe id; nil when
// the configuration has none (insecure).
func KeysOf(cfg *conf.Config) func(uint16) [][]byte {
	keys := make(map[uint16][][]byte)
	for _, p := range cfg.Probes {
		if len(p.Keys) > 0 {
			keys[p.ID] = p.Keys
		}
	}
	if len(keys) == 0 {
		return nil
	}
	return func(id uint16) [][]byte {
		if k, ok := keys[id]; ok {
			return k
		}
		return [][]byte{} // signed by no known key: refused
	}
}

// ErrRefused wraps a collector's refusal of a push.
var ErrRefused = errors.New("refused")

func (c Client) do(ctx context.Context, addr string, op byte, body []byte) (*message, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, requestTimeout)
		defer cancel()
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	req := &message{code: op, keyID: c.KeyID, time: time.Now().UnixNano(), nonce: newNonce(), body: body}
	if _, err := conn.Write(req.encode(c.Key)); err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	keys := func(uint16) [][]byte { return nil }
	if c.Key != nil {
		keys = func(uint16) [][]byte { return [][]byte{c.Key} }
	}
	resp, _, err := readMessage(bufio.NewReader(conn), keys)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	if resp.nonce != req.nonce {
		return nil, fmt.Errorf("%s: the answer is not to this request", addr)
	}
	return resp, nil
}

// Fetch asks the collector at addr for a version published after
// r.Published, telling it r. It returns nil content when there is none.
func (c Client) Fetch(ctx context.Context, addr string, r Report) (published int64, content []byte, err error) {
	resp, err := c.do(ctx, addr, OpFetch, r.encode(nil))
	if err != nil {
		return 0, nil, err
	}
	switch resp.code {
	case StatusNotModified:
		return 0, nil, nil
	case StatusOK:
		if len(resp.body) < 8 {
			return 0, nil, fmt.Errorf("%s: %w", addr, errWire)
		}
		return int64(binary.BigEndian.Uint64(resp.body)), resp.body[8:], nil
	default:
		return 0, nil, fmt.Errorf("%s: fetch %w: %s", addr, ErrRefused, resp.body)
	}
}

// Push publishes content at the collector at addr, stamped published. It
// returns the collector's verdict on the version for itself.
func (c Client) Push(ctx context.Context, addr string, published int64, content []byte) (string, error) {
	body := binary.BigEndian.AppendUint64(nil, uint64(published))
	resp, err := c.do(ctx, addr, OpPush, append(body, content...))
	if err != nil {
		return "", err
	}
	if resp.code != StatusOK {
		return "", fmt.Errorf("%s: push %w: %s", addr, ErrRefused, resp.body)
	}
	return string(resp.body), nil
}

// Reports asks the collector at addr what every component said in its
// fetches; the collector's own report comes first.
func (c Client) Reports(ctx context.Context, addr string) ([]Report, error) {
	resp, err := c.do(ctx, addr, OpStatus, nil)
	if err != nil {
		return nil, err
	}
	if resp.code != StatusOK {
		return nil, fmt.Errorf("%s: status %w: %s", addr, ErrRefused, resp.body)
	}
	var out []Report
	for b := resp.body; len(b) > 0; {
		var r Report
		if r, b, err = decodeReport(b); err != nil {
			return nil, fmt.Errorf("%s: %w", addr, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Fetcher asks the collectors for newer versions, at start and then
// periodically, and offers what it gets to its Watcher. A collector's
// Fetcher also publishes it in its own store (Publish), so that every
// collector serves the newest version.
type Fetcher struct {
	W       *Watcher
	Client  Client
	Role    string
	Name    string
	Peers   []string // collector addresses to ask (a collector leaves itself out)
	Publish func(published int64, content []byte, source string) (string, error)
	Log     *slog.Logger
}

// Once asks every peer and takes the newest publication newer than what
// the Watcher has. It returns whether one was offered.
func (f *Fetcher) Once(ctx context.Context) bool {
	r := f.W.Report(f.Role, f.Name)
	var best []byte
	var bestPub int64
	var from string
	for _, a := range f.Peers {
		pub, b, err := f.Client.Fetch(ctx, a, r)
		if err != nil {
			f.Log.Debug("rollout: fetching the configuration", "collector", a, "err", err)
			continue
		}
		if b != nil && pub > bestPub && pub > r.Published {
			best, bestPub, from = b, pub, a
		}
	}
	if best == nil {
		return false
	}
	src := "collector " + from
	if f.Publish != nil {
		if _, err := f.Publish(bestPub, best, src); err != nil {
			f.Log.Warn("rollout: a fetched configuration not published here", "collector", from, "err", err)
			f.W.Offer(best, bestPub, src)
		}
		return true
	}
	f.W.Offer(best, bestPub, src)
	return true
}

// Run fetches every period until ctx ends.
func (f *Fetcher) Run(ctx context.Context, period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			f.Once(ctx)
		}
	}
}

// FetchPeriod is how often components ask the collectors for a new
// version: the heartbeat, within 1–10 s (a new version is published at
// least a few fetch periods before its validFrom).
func FetchPeriod(cfg *conf.Config) time.Duration {
	return min(max(cfg.Transport.Heartbeat, time.Second), 10*time.Second)
}

// requestTimeout bounds a request without a deadline of its own.
const requestTimeout = 5 * time.Second
