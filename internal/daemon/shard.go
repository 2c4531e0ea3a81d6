package daemon

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/collect/source"
)

// Sharding (--shard, --total-shards): see internal/collect/source/shard.go
// for which app belongs to which shard. Here: the flags, the self metric,
// the Lease of each shard and the shard label of the aggregated families.

// shard is this process's shard.
func (d *daemon) shard() source.Shard { return d.o.shard() }

// registerShard registers crowsnest_shard_info (of shard s) and crowsnest_total_shards
// (a number, for the rules to count the shards serving) on reg and returns the
// registerer of the aggregated families (the duration, lead time and
// recovery histograms): with a "shard" label when sharded, so that the
// rules' and dashboards' max by (..., shard, ...) merges the HA copies of
// one shard and the sum around it adds the shards. Per-app series need no
// such label: each app is in one shard only.
func registerShard(s source.Shard, reg prometheus.Registerer) prometheus.Registerer {
	info := prometheus.NewGauge(prometheus.GaugeOpts{
		Name:        "crowsnest_shard_info",
		Help:        "The shard of the Applications this process watches (--shard) among --total-shards; value 1. Unsharded: shard 0 of 1.",
		ConstLabels: prometheus.Labels{"shard": strconv.Itoa(s.Index), "total_shards": strconv.Itoa(s.Total)},
	})
	info.Set(1)
	total := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "crowsnest_total_shards",
		Help: "--total-shards: how many shards split the Applications (1: unsharded). CrowsnestDown fires when fewer distinct shards serve crowsnest_shard_info.",
	})
	total.Set(float64(s.Total))
	reg.MustRegister(info, total)
	if !s.Sharded() {
		return reg
	}
	return prometheus.WrapRegistererWith(prometheus.Labels{"shard": strconv.Itoa(s.Index)}, reg)
}
