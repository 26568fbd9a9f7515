package probe

import (
	"context"
	"log/slog"

	"github.com/tmon-project/tmon/conf"
	"github.com/tmon-project/tmon/rollout"
)

// fetcher asks every collector for a newer configuration (docs/rollout.md)
// on the probe's behalf, signing with the probe's key.
func fetcher(cfg *conf.Config, name string, cw *rollout.Watcher, log *slog.Logger) *rollout.Fetcher {
	peers := make([]string, len(cfg.Collectors))
	for i, c := range cfg.Collectors {
		peers[i] = c.Address.String()
	}
	return &rollout.Fetcher{W: cw, Client: rollout.ClientFor(cfg, name), Role: "probe", Name: name, Peers: peers, Log: log}
}

// fetchConfig fetches at once and then every rollout.FetchPeriod until ctx
// ends.
func fetchConfig(ctx context.Context, f *rollout.Fetcher, cfg *conf.Config) {
	f.Once(ctx)
	f.Run(ctx, rollout.FetchPeriod(cfg))
}
