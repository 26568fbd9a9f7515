package collector

import (
	"context"
	"path/filepath"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/rollout"
)

// startRollout serves the configuration exchange (docs/rollout.md) on the
// collector's address, TCP, and fetches new versions from the other
// collectors, at once and then periodically. It returns the function that
// stops both.
func (c *Collector) startRollout(ctx context.Context, me conf.Collector, spoolDir string, heard *rollout.Heard) (func(), error) {
	srv, err := rollout.Listen(me.Address.String(), rollout.ServerOptions{
		Dir:     filepath.Join(spoolDir, ".collector"),
		Watcher: c.cw,
		Keys:    rollout.KeysOf(c.cfg),
		Self:    func() rollout.Report { return c.cw.Report("collector", c.self) },
		Heard:   heard,
		Logger:  c.log,
	})
	if err != nil {
		return nil, err
	}
	var peers []string
	for _, o := range c.cfg.Collectors {
		if o.Name != me.Name {
			peers = append(peers, o.Address.String())
		}
	}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if len(peers) == 0 {
			return
		}
		f := &rollout.Fetcher{W: c.cw, Client: rollout.ClientFor(c.cfg, ""), Role: "collector", Name: c.self,
			Peers: peers, Publish: srv.Publish, Log: c.log}
		f.Once(fctx)
		f.Run(fctx, rollout.FetchPeriod(c.cfg))
	}()
	return func() {
		cancel()
		<-done
		srv.Close()
	}, nil
}
