package loader

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ParseSpool reads a spool argument, "DIR" or "COLLECTOR=DIR". Without a
// name the collector is the directory's base name (spool/c1 → c1, as in the
// default <collector spool="spool/NAME">); for a directory named "archive"
// it is its parent's (spool/c1/archive → c1).
func ParseSpool(arg string) (Spool, error) {
	name, dir, ok := strings.Cut(arg, "=")
	if !ok {
		dir, name = arg, ""
	}
	if dir == "" {
		return Spool{}, fmt.Errorf("spool %q: empty directory", arg)
	}
	if name == "" {
		clean := filepath.Clean(dir)
		if abs, err := filepath.Abs(clean); err == nil {
			clean = abs
		}
		name = filepath.Base(clean)
		if name == archiveDir {
			name = filepath.Base(filepath.Dir(clean))
		}
	}
	if len(name) > 64 || name == "/" || name == "." {
		return Spool{}, fmt.Errorf("spool %q: collector name %q unusable (give NAME=DIR)", arg, name)
	}
	return Spool{Collector: name, Dir: dir}, nil
}

// ParseRetention reads "1m=7d,1h=90d,1d=5y,rec=30d": per table class, the
// age after which rows are removed. Ages are a number with unit h, d, w or y
// (365 d), or a Go duration. A class left out is kept forever.
func ParseRetention(s string) (map[string]time.Duration, error) {
	out := map[string]time.Duration{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, item := range strings.Split(s, ",") {
		class, age, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			return nil, fmt.Errorf("retention %q: want CLASS=AGE", item)
		}
		switch class {
		case "1m", "1h", "1d", "rec":
		default:
			return nil, fmt.Errorf("retention %q: class %q is not 1m, 1h, 1d or rec", item, class)
		}
		d, err := parseAge(age)
		if err != nil {
			return nil, fmt.Errorf("retention %q: %w", item, err)
		}
		out[class] = d
	}
	return out, nil
}

func parseAge(s string) (time.Duration, error) {
	units := map[byte]time.Duration{'h': time.Hour, 'd': 24 * time.Hour, 'w': 7 * 24 * time.Hour, 'y': 365 * 24 * time.Hour}
	if n := len(s); n > 1 {
		if u, ok := units[s[n-1]]; ok {
			if v, err := strconv.Atoi(s[:n-1]); err == nil && v > 0 {
				return time.Duration(v) * u, nil
			}
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("age %q: want e.g. 36h, 7d, 2w, 5y", s)
	}
	return d, nil
}
