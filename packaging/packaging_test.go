package packaging

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tmon-project/tmon/internal/testenv"
)

// unit is one installed unit file: its [Service] (or [Timer]) keys.
type unit struct {
	name string
	keys map[string][]string
}

func readUnit(t *testing.T, path string) unit {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unit{name: filepath.Base(path), keys: map[string][]string{}}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || l[0] == '#' || l[0] == '[' {
			continue
		}
		k, v, ok := strings.Cut(l, "=")
		if !ok {
			t.Errorf("%s: line %q is not key=value", u.name, l)
			continue
		}
		u.keys[k] = append(u.keys[k], v)
	}
	return u
}

func (u unit) one(key string) string {
	if v := u.keys[key]; len(v) == 1 {
		return v[0]
	}
	return "<" + strings.Join(u.keys[key], "|") + ">"
}

func need(t *testing.T, cmds ...string) {
	t.Helper()
	for _, c := range cmds {
		if _, err := exec.LookPath(c); err != nil {
			testenv.Skipf(t, "%s not installed (Debian package: systemd for systemd-analyze)", c)
		}
	}
}

// TestInstallAndVerify runs `make install` into a temporary prefix (so
// that the units' ExecStart names binaries that exist), verifies every
// unit with systemd-analyze verify (templates as an instance), checks the
// hardening each must have, and that a staged install (DESTDIR) writes the
// same files with the final paths inside.
func TestInstallAndVerify(t *testing.T) {
	need(t, "make", "systemd-analyze")
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	prefix := t.TempDir()
	run := func(args ...string) {
		t.Helper()
		cmd := exec.Command("make", append([]string{"-C", root, "install"}, args...)...)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("make install %v: %v\n%s", args, err, out)
		}
	}
	run("PREFIX="+prefix, "SYSCONFDIR="+prefix+"/etc", "STATEDIR="+prefix+"/var/lib/tmon")

	unitDir := filepath.Join(prefix, "lib/systemd/system")
	names, err := filepath.Glob(filepath.Join(unitDir, "tmon*"))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"tmon-collector@.service", "tmon-loader.service", "tmon-loader.timer", "tmon-probe@.service", "tmon-report.service"}
	var got []string
	for _, n := range names {
		got = append(got, filepath.Base(n))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("units installed %v, want %v", got, want)
	}
	for _, b := range []string{"tmon", "tmon-probe", "tmon-collector", "tmon-loader", "tmon-report"} {
		if st, err := os.Stat(filepath.Join(prefix, "bin", b)); err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("bin/%s not installed executable: %v", b, err)
		}
	}
	for _, f := range []string{"lib/sysusers.d/tmon.conf", "etc/logrotate.d/tmon", "etc/tmon/tmon.xml.example", "share/doc/tmon/operations.md"} {
		if _, err := os.Stat(filepath.Join(prefix, f)); err != nil {
			t.Errorf("%s not installed: %v", f, err)
		}
	}

	// systemd-analyze verify: a template is verified as an instance.
	inst := t.TempDir()
	var paths []string
	units := map[string]unit{}
	for _, n := range names {
		b := filepath.Base(n)
		data, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "@BINDIR@") || strings.Contains(string(data), "@SYSCONFDIR@") || strings.Contains(string(data), "@STATEDIR@") {
			t.Errorf("%s: placeholder left", b)
		}
		p := n
		if strings.HasSuffix(b, "@.service") {
			p = filepath.Join(inst, strings.Replace(b, "@.", "@x.", 1))
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		paths = append(paths, p)
		units[b] = readUnit(t, n)
	}
	out, err := exec.Command("systemd-analyze", append([]string{"verify"}, paths...)...).CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	for b, u := range units {
		if strings.HasSuffix(b, ".timer") {
			if u.one("OnUnitActiveSec") == "<>" || u.one("Persistent") != "true" {
				t.Errorf("%s: want a periodic, persistent timer", b)
			}
			continue
		}
		if !strings.HasPrefix(u.one("ExecStart"), filepath.Join(prefix, "bin")+"/") || !strings.Contains(u.one("ExecStart"), filepath.Join(prefix, "etc/tmon")+"/") && b != "tmon-report.service" {
			t.Errorf("%s: ExecStart=%s does not use the installed paths", b, u.one("ExecStart"))
		}
		for k, v := range map[string]string{"User": "tmon", "Group": "tmon", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes"} {
			if u.one(k) != v {
				t.Errorf("%s: %s=%s, want %s", b, k, u.one(k), v)
			}
		}
		if u.one("Type") != "oneshot" && u.one("Restart") != "on-failure" {
			t.Errorf("%s: Restart=%s, want on-failure", b, u.one("Restart"))
		}
		caps := u.one("AmbientCapabilities")
		if b == "tmon-probe@.service" {
			if caps != "CAP_NET_RAW CAP_NET_ADMIN" || u.one("CapabilityBoundingSet") != caps {
				t.Errorf("%s: capabilities %q, bounding %q: want exactly CAP_NET_RAW CAP_NET_ADMIN", b, caps, u.one("CapabilityBoundingSet"))
			}
		} else if caps != "<>" || u.one("CapabilityBoundingSet") != "" {
			t.Errorf("%s: capabilities %q, bounding %q: want none", b, caps, u.one("CapabilityBoundingSet"))
		}
	}

	// A staged install writes the final paths into the files.
	stage := t.TempDir()
	run("DESTDIR=" + stage)
	u := readUnit(t, filepath.Join(stage, "usr/local/lib/systemd/system/tmon-probe@.service"))
	if u.one("ExecStart") != "/usr/local/bin/tmon-probe -config /etc/tmon/tmon.xml -name %i" {
		t.Errorf("staged ExecStart=%s", u.one("ExecStart"))
	}
	if _, err := os.Stat(filepath.Join(stage, "usr/local/bin/tmon-collector")); err != nil {
		t.Error(err)
	}
}
