package rollout

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/tmon-project/tmon/conf"
)

// Component is what one probe or collector says about its configuration,
// read from its metrics endpoint.
type Component struct {
	Role, Name string
	Endpoint   string // the <metrics listen> address asked; empty when it has none
	Running    string // version in force
	Held       string // version held for later; empty when none
	HeldFrom   string // its validFrom (RFC 3339); empty when immediate
	Err        error  // no answer, or an answer without the figures
	// Via names the collector whose report gave the figures, and how old
	// they are, when the endpoint did not answer or there is none.
	Via string
}

// Status asks every probe and collector of cfg that has a metrics endpoint
// which configuration versions it runs and holds, all at once, each within
// timeout; for the others it asks the collectors what the component said
// when it last fetched the configuration.
func Status(ctx context.Context, cfg *conf.Config, timeout time.Duration) []Component {
	var out []Component
	for _, c := range cfg.Collectors {
		out = append(out, Component{Role: "collector", Name: c.Name, Endpoint: c.Ops.Metrics})
	}
	for _, p := range cfg.Probes {
		out = append(out, Component{Role: "probe", Name: p.Name, Endpoint: p.Ops.Metrics})
	}
	done := make(chan struct{}, len(out))
	for i := range out {
		go func() {
			defer func() { done <- struct{}{} }()
			c := &out[i]
			if c.Endpoint == "" {
				c.Err = fmt.Errorf("no <metrics> endpoint in the configuration")
				return
			}
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			c.Err = ask(cctx, c)
		}()
	}
	for range out {
		<-done
	}
	fromCollectors(ctx, cfg, out, timeout)
	return out
}

// fromCollectors fills in the components that have no endpoint or did not
// answer with what they told the collectors in their latest fetch (the
// newest report of any collector).
func fromCollectors(ctx context.Context, cfg *conf.Config, out []Component, timeout time.Duration) {
	missing := false
	for _, c := range out {
		missing = missing || c.Err != nil
	}
	if !missing {
		return
	}
	cl := ClientFor(cfg, "")
	best := map[string]Report{}
	via := map[string]string{}
	for _, col := range cfg.Collectors {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		rs, err := cl.Reports(cctx, col.Address.String())
		cancel()
		if err != nil {
			continue
		}
		for _, r := range rs {
			k := r.Role + ":" + r.Name
			if r.Seen > best[k].Seen {
				best[k], via[k] = r, col.Name
			}
		}
	}
	for i := range out {
		c := &out[i]
		if c.Err == nil {
			continue
		}
		r, ok := best[c.Role+":"+c.Name]
		if !ok {
			if c.Endpoint == "" {
				c.Err = fmt.Errorf("no <metrics> endpoint in the configuration, and no collector heard it")
			}
			continue
		}
		c.Err, c.Running, c.Held, c.HeldFrom = nil, r.Running, r.Held, ""
		if r.HeldFrom != 0 {
			c.HeldFrom = time.Unix(0, r.HeldFrom).UTC().Format(time.RFC3339Nano)
		}
		c.Via = fmt.Sprintf("%s, %s ago", via[c.Role+":"+c.Name], time.Since(time.Unix(0, r.Seen)).Round(time.Second))
	}
}

func ask(ctx context.Context, c *Component) error {
	host, port, err := net.SplitHostPort(c.Endpoint)
	if err != nil {
		return err
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "localhost" // listening on every address: ask locally
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+net.JoinHostPort(host, port)+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", c.Endpoint, resp.Status)
	}
	prefix := "tmon_" + c.Role
	fams, err := firstLabels(resp.Body, prefix+"_info", prefix+"_config_held_info")
	if err != nil {
		return fmt.Errorf("%s: %w", c.Endpoint, err)
	}
	label := func(family, name string) (string, bool) {
		v, ok := fams[family][name]
		return v, ok
	}
	v, ok := label(prefix+"_info", "config_version")
	if !ok {
		return fmt.Errorf("%s: no %s_info: not a tmon %s", c.Endpoint, prefix, c.Role)
	}
	if n, _ := label(prefix+"_info", c.Role); n != c.Name {
		return fmt.Errorf("%s answers as %s %q", c.Endpoint, c.Role, n)
	}
	c.Running = v
	c.Held, _ = label(prefix+"_config_held_info", "config_version")
	c.HeldFrom, _ = label(prefix+"_config_held_info", "valid_from")
	return nil
}
