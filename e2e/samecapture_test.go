package e2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tmon-project/tmon/analyse"
	"github.com/tmon-project/tmon/capture"
	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/flow"
	"github.com/tmon-project/tmon/pdu"
	"github.com/tmon-project/tmon/reports"
	"github.com/tmon-project/tmon/sieve"
	"github.com/tmon-project/tmon/spool"
)

// sameCaptureConf measures every IP packet between hop A (probe pa) and hop
// B (probe pb). One-minute intervals: a sparse capture spread over an hour
// writes tens of interval files, not thousands (each one fsynced), and
// still closes intervals while its probes run. Both probes read the same capture, so every delay is 0 and
// nothing is lost. The default transport (maxBuildTime 1 s) keeps a PDU
// open over a second of sparse traffic, which is what broke the stamps.
// dupWindow 0: only a copy with the very same stamp is a duplicate, so
// the oracle's distinct (flow, signature, time) triples are the packets.
const sameCaptureConf = `<tmon version="samecapture" interval="1m">
  <collector name="c1" address="127.0.0.1:%d"/>
  <probe name="pa" id="1" key="` + keyA + `"><interface name="x0" hop="A"/></probe>
  <probe name="pb" id="2" key="` + keyB + `"><interface name="y0" hop="B"/></probe>
  <flowClass name="all">
    <granular fields="ip.src ip.dst ip.proto l4.sport l4.dport icmp.type vlan.id"/>
    <oneWay hops="A B" maxTransit="1s" dupWindow="0s"/>
  </flowClass>
</tmon>`

// sightKey is one distinct packet as the probe's analyser sights it.
type sightKey struct {
	key flow.Key
	sig uint32
	ts  int64
}

// sightRecorder is the oracle's analyse.Output.
type sightRecorder struct {
	flows map[uint32]flow.Key
	seen  map[sightKey]bool
}

func (r *sightRecorder) FlowDef(d pdu.FlowDef) { r.flows[d.ID] = d.Key }
func (r *sightRecorder) Sighting(s pdu.Sighting, _ uint8, _ bool) {
	r.seen[sightKey{r.flows[s.Flow], s.Sig, s.TS}] = true
}

// distinctSightings runs the capture through the sieve and the analyser
// in this process (no transport, no collector) and returns the number of
// distinct packets sighted at hop A and the time the capture spans; open
// reports whether the capture layer could read the file. It reads through
// the probes' own file source, so a record stamped before one already
// delivered is left out here as in the probes (capture.FileStats.Behind).
func distinctSightings(cfg *conf.Config, file string) (n int, span time.Duration, open bool, err error) {
	src, err := capture.OpenFiles(capture.FileConfig{Paths: []string{file}})
	if err != nil {
		return 0, 0, false, nil
	}
	defer src.Close()
	sv, err := sieve.Compile(cfg)
	if err != nil {
		return 0, 0, true, err
	}
	rec := &sightRecorder{flows: map[uint32]flow.Key{}, seen: map[sightKey]bool{}}
	an, err := analyse.New(cfg, 0, rec, analyse.Config{})
	if err != nil {
		return 0, 0, true, err
	}
	var r sieve.Record
	var first, last int64
	for {
		data, ts, iface, lt, err := src.ReadPacket()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return 0, 0, false, nil // the probe refuses it too, naming the file
		}
		if first == 0 {
			first = ts
		}
		last = max(last, ts)
		if ok, _ := sv.Packet(data, ts, iface, lt, &r); ok {
			an.Packet(&r)
		}
	}
	return len(rec.seen), time.Duration(last - first), true, nil
}

// corpusCaptures lists every capture file of the Zeek and tcpdump corpora.
func corpusCaptures(t *testing.T) []string {
	t.Helper()
	var files []string
	for _, sub := range []string{"zeek", "tcpdump"} {
		dir := corpusDir(t, sub)
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && d.Name() == "baseline" {
				return filepath.SkipDir
			}
			if !d.IsDir() && !strings.HasSuffix(p, ".log") && !strings.HasSuffix(p, ".md") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	sort.Strings(files)
	return files
}

var lateRe = regexp.MustCompile(`reconcile="sightings=(\d+) completed=(\d+) lost=(\d+) missed=(\d+) duplicates=(\d+) clashes=(\d+) late=(\d+)`)

// runSameCapture runs a collector and probes pa and pb, both replaying
// file at the given speed (0: full speed), and returns the collector's
// spool and log.
func runSameCapture(bin, dir, file string, speed float64) (spoolDir, collLog string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	spoolDir = filepath.Join(dir, "spool")
	cfg := filepath.Join(dir, "tmon.xml")
	var (
		coll *exec.Cmd
		clog *syncBuffer
	)
	// Another test's process may take the free port first: try again.
	for try := 0; coll == nil; try++ {
		port, err := freePortErr()
		if err != nil {
			return "", "", err
		}
		if err := os.WriteFile(cfg, fmt.Appendf(nil, sameCaptureConf, port), 0o644); err != nil {
			return "", "", err
		}
		clog = &syncBuffer{}
		c := exec.CommandContext(ctx, filepath.Join(bin, "tmon-collector"), "-config", cfg, "-name", "c1", "-spool", spoolDir)
		c.Stderr, c.Stdout = clog, clog
		if err := c.Start(); err != nil {
			return "", "", err
		}
		exited := make(chan error, 1)
		go func() { exited <- c.Wait() }()
		for coll == nil {
			if strings.Contains(clog.String(), "collector listening") {
				coll = c
				defer func() {
					c.Process.Signal(os.Interrupt)
					if e := <-exited; e != nil && err == nil {
						err = fmt.Errorf("collector: %v", e)
					}
					collLog = clog.String()
				}()
				break
			}
			select {
			case e := <-exited:
				if try < 3 && strings.Contains(clog.String(), "address already in use") {
					break
				}
				return "", clog.String(), fmt.Errorf("collector exited: %v", e)
			case <-ctx.Done():
				return "", clog.String(), errors.New("collector not listening")
			case <-time.After(5 * time.Millisecond):
				continue
			}
			break
		}
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	logs := make([]syncBuffer, 2)
	for i, name := range []string{"pa", "pb"} {
		p := exec.CommandContext(ctx, filepath.Join(bin, "tmon-probe"), "-config", cfg, "-name", name, "-read", file,
			"-speed", strconv.FormatFloat(speed, 'g', -1, 64))
		p.Stderr, p.Stdout = &logs[i], &logs[i]
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Run(); err != nil {
				errs[i] = fmt.Errorf("probe %s: %v\n%s", name, err, logs[i].String())
			}
		}()
	}
	wg.Wait()
	return spoolDir, "", errors.Join(errs...)
}

// TestSameCaptureBothHops: every capture of the Zeek and tcpdump corpora
// that holds IP traffic is replayed at full speed by two probe processes as
// hop A and hop B of one path into one collector process. Every delay is 0,
// nothing is lost, missed or late, and the collector measures exactly the
// packets the sieve and analyser sight (computed here, in this process,
// without transport or collector). Sparse traffic at full speed used to
// lose most of its sightings as late (the flow definition PDU carried the
// stamp of the sightings that followed it).
func TestSameCaptureBothHops(t *testing.T) {
	sameCaptureCorpus(t, func(time.Duration) float64 { return 0 })
}

// TestSameCaptureBothHopsPaced: the same, every capture replayed paced
// (the probes' data clock runs with the wall clock between packets, so
// watermarks advance while nothing is read): each at the speed that
// replays it in about two seconds, its original timing where it is
// shorter. A sparse capture (a few packets a second) paced this way is
// the live case.
//
// Fuzzed captures of the tcpdump corpus whose stamps jump back by days
// found a cause of false figures here: a record stamped before what the
// paced probe had reported came late, or made its partner missed. The
// file source now leaves such records out and counts them, the same at
// every probe (capture.TestFileBehindLeftOut).
func TestSameCaptureBothHopsPaced(t *testing.T) {
	sameCaptureCorpus(t, func(span time.Duration) float64 {
		return max(1, float64(span)/float64(2*time.Second))
	})
}

// sameCaptureCorpus runs every capture with IP traffic as both hops, at
// the speed speedOf gives for the time it spans.
func sameCaptureCorpus(t *testing.T, speedOf func(span time.Duration) float64) {
	t.Helper()
	files := corpusCaptures(t)
	if len(files) < 850 {
		t.Fatalf("%d captures in the corpora, expected the 33 of Zeek and the 830 of tcpdump", len(files))
	}
	ccfg, err := conf.Parse(strings.NewReader(fmt.Sprintf(sameCaptureConf, 1)), "samecapture.xml")
	if err != nil {
		t.Fatal(err)
	}
	type job struct {
		file  string
		want  int
		speed float64
	}
	var jobs []job
	unreadable := 0
	for _, f := range files {
		n, span, open, err := distinctSightings(ccfg, f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		if !open {
			unreadable++
			continue
		}
		if n > 0 {
			jobs = append(jobs, job{f, n, speedOf(span)})
		}
	}
	if len(jobs) < 400 {
		t.Fatalf("only %d captures with IP traffic", len(jobs))
	}
	// 890 process starts: under the race detector they would take ten
	// minutes of CI; the other end-to-end tests run the race-enabled
	// binaries, this one the plain build.
	bin := binDir
	if raceEnabled {
		bin = t.TempDir()
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", bin+"/", "../cmd/tmon-probe", "../cmd/tmon-collector")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building the binaries without the race detector: %v\n%s", err, out)
		}
		t.Logf("built the binaries without the race detector in %v", time.Since(start).Round(time.Second))
	}
	root := t.TempDir()
	var (
		mu       sync.Mutex
		failures []string
		packets  int
	)
	work := make(chan int)
	var wg sync.WaitGroup
	for range max(8, 8*runtime.GOMAXPROCS(0)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				j := jobs[i]
				msg := checkSameCapture(bin, filepath.Join(root, strconv.Itoa(i)), j.file, j.want, j.speed)
				mu.Lock()
				if msg != "" {
					failures = append(failures, msg)
				}
				packets += j.want
				mu.Unlock()
			}
		}()
	}
	for i := range jobs {
		work <- i
	}
	close(work)
	wg.Wait()
	sort.Strings(failures)
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("%d captures (%d unreadable, %d without IP traffic): %d with IP traffic, %d packets; %d failed",
		len(files), unreadable, len(files)-unreadable-len(jobs), len(jobs), packets, len(failures))
}

// checkSameCapture runs one capture and returns what is wrong, or "".
func checkSameCapture(bin, dir, file string, want int, speed float64) string {
	name := filepath.Base(filepath.Dir(file)) + "/" + filepath.Base(file)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err.Error()
	}
	spoolDir, clog, err := runSameCapture(bin, dir, file, speed)
	if err != nil {
		return fmt.Sprintf("%s: %v\n%s", name, err, clog)
	}
	s, err := reports.ReadSpool(spoolDir)
	if err != nil {
		return fmt.Sprintf("%s: %v", name, err)
	}
	var count, lost, missed, dropped uint64
	var mn, mx int64
	for _, p := range s.Pairs {
		count += p.Count
		lost += p.Lost
		missed += p.Missed
		dropped += p.Dropped
		mn, mx = min(mn, p.Min), max(mx, p.Max)
	}
	var bad []string
	if count != uint64(want) {
		bad = append(bad, fmt.Sprintf("%d delays, want %d", count, want))
	}
	if lost+missed+dropped != 0 {
		bad = append(bad, fmt.Sprintf("lost %d missed %d dropped %d", lost, missed, dropped))
	}
	if mn != 0 || mx != 0 {
		bad = append(bad, fmt.Sprintf("delays from %d to %d ns, want 0", mn, mx))
	}
	m := lateRe.FindStringSubmatch(clog)
	switch {
	case m == nil:
		bad = append(bad, "no reconcile counters in the collector log")
	case m[7] != "0":
		bad = append(bad, "late="+m[7])
	}
	// Every sighting of both probes is accounted for, once: two per packet
	// measured, and the duplicates (copies with the same stamp).
	a, msg := readAccounting(spoolDir)
	if msg != "" {
		bad = append(bad, msg)
	} else if a["sightings"] != 2*uint64(want)+a["duplicate"] || a["complete"] != 2*uint64(want) || a["late"] != 0 {
		bad = append(bad, fmt.Sprintf("accounting %v, want %d complete sightings and none late", a, 2*want))
	}
	if len(bad) == 0 {
		return ""
	}
	return fmt.Sprintf("%s: %s", name, strings.Join(bad, ", "))
}

// readAccounting sums the owd_accounting files of a spool, checking the
// identity of docs/spool.md in every row; it returns what is wrong, or "".
func readAccounting(spoolDir string) (map[string]uint64, string) {
	files, _ := filepath.Glob(filepath.Join(spoolDir, spool.TypeAccounting, "*.tsv"))
	sum := map[string]uint64{}
	for _, f := range files {
		head, rows, err := spool.ReadFile(f)
		if err != nil {
			return nil, err.Error()
		}
		for _, row := range rows {
			v := map[string]uint64{}
			for i, col := range head {
				if i >= 2 && i < len(row) {
					n, err := strconv.ParseUint(row[i], 10, 64)
					if err != nil {
						return nil, fmt.Sprintf("%s: %s=%q", f, col, row[i])
					}
					v[col] = n
					sum[col] += n
				}
			}
			if v["sightings"] != v["complete"]+v["lost"]+v["missed"]+v["dropped"]+v["duplicate"]+v["late"]+v["invalid"] {
				return nil, fmt.Sprintf("%s: row %v does not balance", filepath.Base(f), row)
			}
		}
	}
	if len(files) == 0 {
		return nil, "no owd_accounting file"
	}
	return sum, ""
}
