package rollout

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tmon-project/tmon/conf"
)

const (
	keyA = "000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
	keyB = "f0e0d0c0b0a090807060504030201000f0e0d0c0b0a090807060504030201000"
)

// site writes the key files and returns a configuration text of the given
// version with extra attributes on <tmon>.
func site(t *testing.T, dir string) func(version, extra string) string {
	t.Helper()
	for name, k := range map[string]string{"pa.key": keyA, "pb.key": keyB} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(k+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return func(version, extra string) string {
		return fmt.Sprintf(`<tmon version=%q %s interval="1s">
  <collector name="c1" address="127.0.0.1:1"/>
  <collector name="c2" address="127.0.0.1:2"/>
  <probe name="pa" id="1" keyFile="pa.key"><interface name="a0" hop="A"/></probe>
  <probe name="pb" id="2" keyFile="pb.key"><interface name="b0" hop="B"/></probe>
  <flowClass name="all"><filter><match field="ip.proto" value="udp"/></filter>
    <oneWay hops="A B" timeout="2s"/></flowClass>
</tmon>
`, version, extra)
	}
}

type events struct {
	mu   sync.Mutex
	list []string
}

func (e *events) add(kind, detail string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.list = append(e.list, kind+" "+detail)
}

func (e *events) all() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.list...)
}

func load(t *testing.T, path, content string) *conf.Config {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := conf.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func watcherOf(cfg *conf.Config, role, name string, ev *events) *Watcher {
	member := func(c *conf.Config) bool { _, ok := c.ProbeByName(name); return ok }
	if role == "collector" {
		member = func(c *conf.Config) bool { _, ok := c.CollectorByName(name); return ok }
	}
	return New(cfg, member, ev.add, quiet())
}

// TestExchange publishes versions at a collector's Server over TCP and
// fetches them as a probe and as another collector would: each validates on
// arrival, holds or rejects; replays, forgeries and keys in clear are
// refused; the store survives a restart of the server.
func TestExchange(t *testing.T) {
	dir := t.TempDir()
	conf1 := site(t, dir)
	cfg := load(t, filepath.Join(dir, "tmon.xml"), conf1("v1", ""))
	var cev, pev events
	cw := watcherOf(cfg, "collector", "c1", &cev)
	store := filepath.Join(dir, "spool", ".collector")
	srv, err := Listen("127.0.0.1:0", ServerOptions{Dir: store, Watcher: cw, Keys: KeysOf(cfg),
		Self: func() Report { return cw.Report("collector", "c1") }, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Close() }()
	ctx := context.Background()
	admin := ClientFor(cfg, "")
	if admin.KeyID != 1 || string(admin.Key) == "" {
		t.Fatalf("admin client: %+v", admin)
	}

	// Nothing published yet.
	pcfg := load(t, filepath.Join(dir, "probe.xml"), conf1("v1", ""))
	pw := watcherOf(pcfg, "probe", "pb", &pev)
	f := &Fetcher{W: pw, Client: ClientFor(pcfg, "pb"), Role: "probe", Name: "pb", Peers: []string{srv.Addr()}, Log: quiet()}
	if f.Client.KeyID != 2 {
		t.Fatalf("probe pb signs with key id %d", f.Client.KeyID)
	}
	if f.Once(ctx) {
		t.Fatal("fetched a version before any was published")
	}

	// A good version for later.
	from := time.Now().Add(time.Hour).Truncate(time.Second)
	v2 := conf1("v2", `validFrom="`+from.UTC().Format(time.RFC3339)+`"`)
	pub := time.Now().UnixNano()
	verdict, err := admin.Push(ctx, srv.Addr(), pub, []byte(v2))
	if err != nil || !strings.Contains(verdict, `version "v2" accepted and held`) {
		t.Fatalf("push v2: %q, %v", verdict, err)
	}
	if h := cw.Held(); h == nil || h.Version != "v2" || !h.ValidFrom.Equal(from) {
		t.Fatalf("collector holds %+v", h)
	}
	if b, err := os.ReadFile(filepath.Join(store, storeFile)); err != nil || string(b) != v2 {
		t.Fatalf("store: %q, %v", b, err)
	}
	// The same publication again (a replay) and an older one are refused.
	for _, p := range []int64{pub, pub - 1} {
		if _, err := admin.Push(ctx, srv.Addr(), p, []byte(v2)); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "not newer") {
			t.Errorf("push at %d: %v", p, err)
		}
	}
	// A key written in the file would travel in clear.
	inline := strings.Replace(conf1("v3", ""), `keyFile="pa.key"`, `key="`+keyA+`"`, 1)
	if _, err := admin.Push(ctx, srv.Addr(), pub+1, []byte(inline)); !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "keyFile") {
		t.Errorf("push with an inline key: %v", err)
	}
	// Signed with a key the collector does not have: no answer at all.
	forger := Client{KeyID: 1, Key: []byte("0123456789abcdef0123456789abcdef")}
	if _, err := forger.Push(ctx, srv.Addr(), pub+2, []byte(v2)); err == nil || errors.Is(err, ErrRefused) {
		t.Errorf("forged push: %v", err)
	}
	if _, _, err := (Client{}).Fetch(ctx, srv.Addr(), Report{}); err == nil {
		t.Error("unsigned fetch answered")
	}

	// The probe fetches it: validated, held.
	if !f.Once(ctx) {
		t.Fatal("the probe did not fetch v2")
	}
	if h := pw.Held(); h == nil || h.Version != "v2" || pw.Published() != pub {
		t.Fatalf("probe holds %+v, published %d, want %d", h, pw.Published(), pub)
	}
	if f.Once(ctx) {
		t.Error("fetched v2 twice")
	}
	// Another collector fetches it into its own store.
	c2cfg := load(t, filepath.Join(dir, "c2.xml"), conf1("v1", ""))
	var c2ev events
	c2w := watcherOf(c2cfg, "collector", "c2", &c2ev)
	c2 := &Server{dir: filepath.Join(dir, "spool2"), w: c2w, log: quiet(), heard: NewHeard()}
	f2 := &Fetcher{W: c2w, Client: ClientFor(c2cfg, ""), Role: "collector", Name: "c2", Peers: []string{srv.Addr()}, Publish: c2.Publish, Log: quiet()}
	if !f2.Once(ctx) || c2.Latest() != pub || c2w.Held() == nil {
		t.Fatalf("c2: fetched %d, holds %v", c2.Latest(), c2w.Held())
	}

	// Status: the collector's own report, then what each fetcher said.
	rs, err := admin.Reports(ctx, srv.Addr())
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Report{}
	for _, r := range rs {
		got[r.Role+":"+r.Name] = r
	}
	if rs[0].Name != "c1" || rs[0].Running != "v1" || rs[0].Held != "v2" || rs[0].HeldFrom != from.UnixNano() {
		t.Errorf("c1's own report: %+v", rs[0])
	}
	// pb's last fetch said it held v2 (it fetched once more after taking it).
	if r := got["probe:pb"]; r.Running != "v1" || r.Held != "v2" || r.Published != pub || r.Seen == 0 {
		t.Errorf("pb's report: %+v", r)
	}
	if r := got["collector:c2"]; r.Running != "v1" {
		t.Errorf("c2's report: %+v", r)
	}

	// A broken version is published (each component judges it) and
	// rejected by the collector and the probe: v1 stays in force, v2 held.
	broken := strings.ReplaceAll(conf1("v3", ""), "flowClass", "flowClas")
	pub3 := time.Now().UnixNano()
	verdict, err = admin.Push(ctx, srv.Addr(), pub3, []byte(broken))
	if err != nil || !strings.Contains(verdict, "rejected by this collector") || !strings.Contains(verdict, "unknown element") {
		t.Fatalf("push of a broken file: %q, %v", verdict, err)
	}
	if !f.Once(ctx) {
		t.Fatal("the probe did not fetch v3")
	}
	for name, w := range map[string]*Watcher{"c1": cw, "pb": pw} {
		if w.Running().Version != "v1" || w.Held() == nil || w.Held().Version != "v2" {
			t.Errorf("%s after the broken version: runs %s, holds %v", name, w.Running().Version, w.Held())
		}
	}
	for name, ev := range map[string]*events{"c1": &cev, "pb": &pev} {
		n := map[string]int{}
		for _, e := range ev.all() {
			n[strings.Fields(e)[0]]++
		}
		if n[KindAccepted] != 1 || n[KindRejected] != 1 {
			t.Errorf("%s events: %q", name, ev.all())
		}
	}

	// A restarted collector finds the last publication in its store and
	// judges it again.
	srv.Close()
	var rev events
	rw := watcherOf(cfg, "collector", "c1", &rev)
	srv, err = Listen("127.0.0.1:0", ServerOptions{Dir: store, Watcher: rw, Keys: KeysOf(cfg),
		Self: func() Report { return rw.Report("collector", "c1") }, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	if srv.Latest() != pub3 || len(rev.all()) != 1 || !strings.HasPrefix(rev.all()[0], KindRejected) {
		t.Errorf("after a restart: latest %d (want %d), events %q", srv.Latest(), pub3, rev.all())
	}
}

// TestValidateAligned refuses a validFrom that would split an interval of
// the running or the new version.
func TestValidateAligned(t *testing.T) {
	dir := t.TempDir()
	conf1 := site(t, dir)
	cfg := load(t, filepath.Join(dir, "tmon.xml"), strings.Replace(conf1("v1", ""), `interval="1s"`, `interval="1m"`, 1))
	var ev events
	w := watcherOf(cfg, "probe", "pa", &ev)
	at := time.Date(2030, 1, 1, 0, 0, 30, 0, time.UTC)
	_, err := w.Validate([]byte(conf1("v2", `validFrom="`+at.Format(time.RFC3339)+`"`)))
	if err == nil || !strings.Contains(err.Error(), `not on an interval boundary of version "v1" (interval 1m0s)`) {
		t.Errorf("validFrom inside a minute of v1: %v", err)
	}
	if _, err := w.Validate([]byte(conf1("v2", `validFrom="`+at.Add(30*time.Second).Format(time.RFC3339)+`"`))); err != nil {
		t.Errorf("validFrom on a minute: %v", err)
	}
	if _, err := w.Validate([]byte(strings.Replace(conf1("v2", ""), `name="pa"`, `name="px"`, 1))); err == nil || !strings.Contains(err.Error(), "not in version") {
		t.Errorf("a version without this probe: %v", err)
	}
}

// TestReadMessageBounds refuses a body length past the limit before
// reading it, and garbage.
func TestReadMessageBounds(t *testing.T) {
	m := &message{code: OpFetch, body: []byte("x")}
	b := m.encode(nil)
	b[32], b[33], b[34], b[35] = 0xff, 0xff, 0xff, 0xff
	if _, _, err := readMessage(strings.NewReader(string(b)), func(uint16) [][]byte { return nil }); !errors.Is(err, errWire) {
		t.Errorf("huge body length: %v", err)
	}
	if _, _, err := readMessage(strings.NewReader("GET / HTTP/1.1\r\n\r\n0123456789012345678901234567890"), func(uint16) [][]byte { return nil }); !errors.Is(err, errWire) {
		t.Errorf("garbage: %v", err)
	}
	// A connection that sends nothing and closes is an error, not a hang.
	a, c := net.Pipe()
	c.Close()
	if _, _, err := readMessage(a, func(uint16) [][]byte { return nil }); err == nil {
		t.Error("closed connection read")
	}
}

// TestWireGolden checks the example of docs/rollout.md byte for byte.
func TestWireGolden(t *testing.T) {
	r := Report{Role: "probe", Name: "pb", Running: "v1"}
	m := &message{code: OpFetch, keyID: 2, time: 0x17979cfe362a0000, body: r.encode(nil)}
	key := []byte(keyB)
	b := m.encode(key)
	hdr := "7463010101100002" + "17979cfe362a0000" + strings.Repeat("00", 16) + "00000025"
	body := "0000000000000000" + "0570726f6265" + "027062" + "027631" + "00" + "0000000000000000" + "0000000000000000"
	if got := fmt.Sprintf("%x", b[:len(b)-authSize]); got != hdr+body {
		t.Errorf("encoded\n%s\nwant\n%s", got, hdr+body)
	}
	got, k, err := readMessage(strings.NewReader(string(b)), func(uint16) [][]byte { return [][]byte{key} })
	if err != nil || string(k) != string(key) {
		t.Fatal(err)
	}
	back, rest, err := decodeReport(got.body)
	if err != nil || len(rest) != 0 || back != r {
		t.Errorf("decoded %+v, rest %d, %v", back, len(rest), err)
	}
	b[40] ^= 1 // a body byte: the trailer no longer verifies
	if _, _, err := readMessage(strings.NewReader(string(b)), func(uint16) [][]byte { return [][]byte{key} }); err == nil {
		t.Error("altered message verified")
	}
}
