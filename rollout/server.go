package rollout

import (
	"bufio"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"
)

// Server is a collector's side of the configuration exchange: it keeps the
// version published last (tmon config push, or fetched from another
// collector) in its store and serves it to the probes and collectors that
// fetch it, and answers status requests with what each of them said.
type Server struct {
	dir  string // the store: <spool>/.collector
	self func() Report
	w    *Watcher
	keys func(id uint16) [][]byte
	log  *slog.Logger
	ln   net.Listener
	wg   sync.WaitGroup

	mu        sync.Mutex
	published int64
	content   []byte
	heard     *Heard
}

// Heard is what the components said in their fetches, by role and name;
// it outlives a Server (a collector switching versions keeps it).
type Heard struct {
	mu sync.Mutex
	m  map[string]Report
}

// NewHeard returns an empty Heard.
func NewHeard() *Heard { return &Heard{m: make(map[string]Report)} }

// Store file names, in the collector's .collector directory.
const (
	storeFile = "published.xml"
	storeMeta = "published.json"
)

// maxReports bounds the components a collector remembers for status.
const maxReports = 4096

// ServerOptions configure a Server.
type ServerOptions struct {
	Dir     string                   // the store's directory
	Watcher *Watcher                 // the collector's own versions
	Keys    func(id uint16) [][]byte // keys accepted for key id; nil everywhere: unauthenticated (insecure)
	Self    func() Report            // the collector's own report
	Heard   *Heard                   // nil: a new one
	Logger  *slog.Logger
}

// OpenStore reads the version a collector published last, if any.
func OpenStore(dir string) (published int64, content []byte, err error) {
	mb, err := os.ReadFile(filepath.Join(dir, storeMeta))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil, nil
	}
	if err != nil {
		return 0, nil, fmt.Errorf("rollout: store: %w", err)
	}
	var meta struct{ Published int64 }
	if err := json.Unmarshal(mb, &meta); err != nil {
		return 0, nil, fmt.Errorf("rollout: store %s: %w", filepath.Join(dir, storeMeta), err)
	}
	content, err = os.ReadFile(filepath.Join(dir, storeFile))
	if err != nil {
		return 0, nil, fmt.Errorf("rollout: store: %w", err)
	}
	return meta.Published, content, nil
}

// Listen starts serving on addr (TCP). The version found in the store is
// offered to the collector's Watcher: a collector that was down catches up
// with what was published before it stopped.
func Listen(addr string, o ServerOptions) (*Server, error) {
	s := &Server{dir: o.Dir, self: o.Self, w: o.Watcher, keys: o.Keys, log: o.Logger, heard: o.Heard}
	if s.heard == nil {
		s.heard = NewHeard()
	}
	if s.keys == nil {
		s.keys = func(uint16) [][]byte { return nil }
	}
	var err error
	if s.published, s.content, err = OpenStore(o.Dir); err != nil {
		return nil, err
	}
	if s.content != nil {
		s.w.Offer(s.content, s.published, "the collector's store")
	}
	if s.ln, err = net.Listen("tcp", addr); err != nil {
		return nil, fmt.Errorf("rollout: %w", err)
	}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Close stops serving and waits for the requests in progress.
func (s *Server) Close() {
	s.ln.Close()
	s.wg.Wait()
}

// Addr returns the address the Server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Latest returns the stamp of the version published last (0: none).
func (s *Server) Latest() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.published
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer c.Close()
			c.SetDeadline(time.Now().Add(30 * time.Second))
			if err := s.serve(c); err != nil {
				s.log.Warn("rollout: configuration request refused", "from", c.RemoteAddr().String(), "err", err)
			}
		}()
	}
}

func (s *Server) serve(c net.Conn) error {
	m, key, err := readMessage(bufio.NewReader(c), s.keys)
	if err != nil {
		return err // no answer: a forger learns nothing
	}
	if d := time.Duration(time.Now().UnixNano() - m.time); d > maxSkew || d < -maxSkew {
		return fmt.Errorf("request time %s off the collector's clock by %s", time.Unix(0, m.time).UTC().Format(time.RFC3339), d)
	}
	resp := &message{code: StatusOK, keyID: m.keyID, time: time.Now().UnixNano(), nonce: m.nonce}
	switch m.code {
	case OpFetch:
		r, _, err := decodeReport(m.body)
		if err != nil {
			return err
		}
		s.hear(r)
		s.mu.Lock()
		if s.content == nil || r.Published >= s.published {
			resp.code = StatusNotModified
		} else {
			resp.body = binary.BigEndian.AppendUint64(nil, uint64(s.published))
			resp.body = append(resp.body, s.content...)
		}
		s.mu.Unlock()
	case OpPush:
		if len(m.body) < 8 {
			return errWire
		}
		pub := int64(binary.BigEndian.Uint64(m.body))
		verdict, err := s.Publish(pub, m.body[8:], "a push from "+c.RemoteAddr().String())
		if err != nil {
			resp.code, resp.body = StatusRefused, []byte(err.Error())
		} else {
			resp.body = []byte(verdict)
		}
	case OpStatus:
		resp.body = s.statusBody()
	default:
		return fmt.Errorf("%w: op %d", errWire, m.code)
	}
	_, err = c.Write(resp.encode(key))
	return err
}

// inlineKey finds a key written into the file: a published file travels
// in clear to every component.
var inlineKey = regexp.MustCompile(`<probe\b[^>]*\skey\s*=`)

// Publish stores content as the version published at stamp pub and offers
// it to the collector's own Watcher. A file is published even when this
// collector rejects it: another component may be the one it is for (a file
// that removes this collector), and each component judges it on arrival.
// It refuses only what must not travel: a stamp not newer than the version
// published last (a replay, or an older push), an empty file, and a file
// with a key written in it. The verdict is this collector's own.
func (s *Server) Publish(pub int64, content []byte, source string) (verdict string, err error) {
	switch {
	case len(content) == 0:
		return "", errors.New("empty file")
	case len(content) > maxFile:
		return "", fmt.Errorf("file larger than %d bytes", maxFile)
	case inlineKey.Match(content):
		return "", errors.New(`a <probe> has key="…": the file travels in clear to every component; put the keys into keyFile files`)
	}
	s.mu.Lock()
	if pub <= s.published {
		s.mu.Unlock()
		return "", fmt.Errorf("publication of %s not newer than the one in the store (%s)", stamp(pub), stamp(s.published))
	}
	if err := s.store(pub, content); err != nil {
		s.mu.Unlock()
		return "", err
	}
	s.published, s.content = pub, content
	s.mu.Unlock()
	s.log.Info("rollout: new configuration published", "published", stamp(pub), "source", source, "bytes", len(content))
	if err := s.w.Offer(content, pub, source); err != nil {
		return "published; rejected by this collector, its version " + s.w.Running().Version + " stays in force: " + err.Error(), nil
	}
	if h := s.w.Held(); h != nil {
		return fmt.Sprintf("published; version %q accepted and held by this collector", h.Version), nil
	}
	return "published; already in force at this collector", nil
}

func stamp(ns int64) string {
	if ns == 0 {
		return "none"
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

// store writes the file, then its stamp, each atomically: a crash leaves
// the previous publication or the new one (a new file with the old stamp
// is taken again at the next fetch or push).
func (s *Server) store(pub int64, content []byte) error {
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return fmt.Errorf("rollout: store: %w", err)
	}
	meta, _ := json.Marshal(struct{ Published int64 }{pub})
	for _, f := range []struct {
		name string
		b    []byte
	}{{storeFile, content}, {storeMeta, meta}} {
		if err := writeAtomic(filepath.Join(s.dir, f.name), f.b); err != nil {
			return fmt.Errorf("rollout: store: %w", err)
		}
	}
	return nil
}

func writeAtomic(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".publish-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
	}
	return err
}

func (s *Server) hear(r Report) {
	if r.Role != "probe" && r.Role != "collector" || r.Name == "" {
		return
	}
	r.Seen = time.Now().UnixNano()
	h := s.heard
	h.mu.Lock()
	defer h.mu.Unlock()
	k := r.Role + ":" + r.Name
	if _, ok := h.m[k]; ok || len(h.m) < maxReports {
		h.m[k] = r
	}
}

// statusBody: the collector's own report, then every component heard,
// back to back.
func (s *Server) statusBody() []byte {
	self := s.self()
	self.Seen = time.Now().UnixNano()
	b := self.encode(nil)
	h := s.heard
	h.mu.Lock()
	defer h.mu.Unlock()
	keys := make([]string, 0, len(h.m))
	for k := range h.m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r := h.m[k]
		b = r.encode(b)
	}
	return b
}
