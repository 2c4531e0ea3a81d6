package daemon

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/crowsnest/crowsnest/internal/model"
)

type countingOutputs struct{ ops, facts, records int }

func (c *countingOutputs) Finished(*model.Operation)    { c.ops++ }
func (c *countingOutputs) Fact(*model.Fact)             { c.facts++ }
func (c *countingOutputs) Send(*model.DeploymentRecord) { c.records++ }

// What leaves the process (traces, Loki facts, CloudEvents) passes the
// gate only while this replica leads; without election, always.
func TestLeaderGate(t *testing.T) {
	out := &countingOutputs{}
	send := func(g *leaderGate) {
		g.operations(out).Finished(&model.Operation{})
		g.facts(out).Fact(&model.Fact{})
		g.records(out).Send(&model.DeploymentRecord{})
	}
	send(newLeaderGate(false, nil))
	if *out != (countingOutputs{1, 1, 1}) {
		t.Fatalf("without election: %+v, want each output once", *out)
	}
	g := newLeaderGate(true, prometheus.NewRegistry())
	send(g)
	if *out != (countingOutputs{1, 1, 1}) {
		t.Fatalf("before the Lease is won: %+v, want nothing more", *out)
	}
	g.set(true)
	send(g)
	g.set(false)
	send(g)
	if *out != (countingOutputs{2, 2, 2}) {
		t.Fatalf("leading, then not: %+v, want each output once more", *out)
	}
}
