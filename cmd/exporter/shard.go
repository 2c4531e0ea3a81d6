package main

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/collect/source"
)

// Sharding (--shard, --total-shards): see internal/collect/source/shard.go
// for which app belongs to which shard. Here: the flags, the self metric,
// the Lease of each shard and the shard label of the aggregated families.

// addShardFlags adds --shard and --total-shards to serve.
func (c *cli) addShardFlags() {
	c.shard = c.serve.Flag("shard", "This process's shard, from 0 to --total-shards - 1: it watches, serves and reports only the Applications whose UID hashes to it (Jump consistent hash of the UID's FNV-1a hash, as kube-state-metrics shards). In the chart's StatefulSet, the pod's ordinal.").Default("0").String()
	c.totalShards = c.serve.Flag("total-shards", "How many shards split the Applications; 1: unsharded. Each shard elects its own leader (Lease <--leader-elect.lease-name>-<shard>-of-<total>).").Default("1").Int()
}

// shardOf returns the shard the flags name (shard 0 if --shard is not a
// number: shardError says so).
func (c *cli) shardOf() source.Shard {
	i, _ := strconv.Atoi(*c.shard)
	return source.Shard{Index: i, Total: *c.totalShards}
}

// shardError checks --shard and --total-shards. --shard is read as a
// string to say what went wrong when the chart's StatefulSet passes an empty
// one: a Kubernetes older than 1.28 sets no pod-index label.
func (c *cli) shardError() error {
	if _, err := strconv.Atoi(*c.shard); err != nil {
		return fmt.Errorf("--shard: %q is not a number (in the chart's StatefulSet it is the pod's apps.kubernetes.io/pod-index label, which Kubernetes sets from 1.28 on)", *c.shard)
	}
	return c.shardOf().Validate()
}

// leaseName is the Lease of this process's shard: --leader-elect.lease-name,
// with "-<shard>-of-<total>" when sharded. The total is part of the name so
// that while a StatefulSet rolls from one shard count to another, processes
// of the old and the new count, which own different apps, never share a
// Lease (that would leave apps without anyone sending their traces).
func (c *cli) leaseName() string {
	s := c.shardOf()
	if !s.Sharded() {
		return *c.leaderLease
	}
	return fmt.Sprintf("%s-%d-of-%d", *c.leaderLease, s.Index, s.Total)
}

// registerShard registers crowsnest_shard_info and crowsnest_total_shards
// (a number, for the rules to count the shards serving) on reg and returns the
// registerer of the aggregated families (the duration, lead time and
// recovery histograms): with a "shard" label when sharded, so that the
// rules' and dashboards' max by (..., shard, ...) merges the HA copies of
// one shard and the sum around it adds the shards. Per-app series need no
// such label: each app is in one shard only.
func (c *cli) registerShard(reg prometheus.Registerer) prometheus.Registerer {
	s := c.shardOf()
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
