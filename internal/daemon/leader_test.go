package daemon

import (
	"io"
	"log/slog"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/crowsnest/crowsnest/internal/config"
	"github.com/crowsnest/crowsnest/internal/model"
)

// What leaves the process passes the gate only while this replica leads;
// without election, always. The outputs' queues are the gate (nothing is
// queued, so nothing is dropped, while the replica does not lead); here,
// that the daemon wires it into each: Loki's facts and the traces.
func TestLeaderGateWiredIntoTheOutputs(t *testing.T) {
	for _, tc := range []struct {
		desc          string
		elect, leader bool
		wantDrops     bool
	}{
		{"without election", false, false, true},
		{"electing, not leading", true, false, false},
		{"leading", true, true, true},
	} {
		d := &daemon{o: Options{
			Loki:   LokiOptions{URL: "http://loki.invalid:3100", BufferSize: 1, Job: "crowsnest"},
			Traces: TraceOptions{Exporter: "stdout"},
		}, stdout: io.Discard, log: slog.New(slog.DiscardHandler), reg: newRegistry()}
		d.aggregated = d.reg
		d.gate = newLeaderGate(tc.elect, d.reg)
		d.gate.set(tc.leader || !tc.elect)
		cfg := config.NewReloader("", nil, d.reg, d.log)
		conf, err := cfg.Load()
		if err != nil {
			t.Fatal(err)
		}
		out, err := d.outputs(conf, cfg)
		if err != nil {
			t.Fatal(err)
		}
		// No worker runs: the queues fill (Loki's holds 1, the traces'
		// 256) and drop, if anything is let in.
		for range 300 {
			for _, f := range out.subs.Facts {
				f.Fact(&model.Fact{Name: model.FactSyncFinished, App: "argocd/app"})
			}
			for _, o := range out.subs.Operations {
				o.Finished(&model.Operation{UID: "u", Namespace: "argocd", Name: "app"})
			}
		}
		out.close()
		lines, err := testutil.GatherAndCount(d.reg, "crowsnest_events_dropped_total")
		if err != nil || lines == 0 {
			t.Fatalf("%s: no crowsnest_events_dropped_total (%v)", tc.desc, err)
		}
		events := gathered(t, d, "crowsnest_events_dropped_total", "queue_full")
		spans := gathered(t, d, "crowsnest_spans_dropped_total", "queue_full")
		if got := events > 0 && spans > 0; got != tc.wantDrops || (events > 0) != (spans > 0) {
			t.Errorf("%s: %v event lines and %v spans dropped queue_full, want drops: %v", tc.desc, events, spans, tc.wantDrops)
		}
	}
}

// gathered is the value of the counter name{reason} in d's registry.
func gathered(t *testing.T, d *daemon, name, reason string) float64 {
	t.Helper()
	mfs, err := d.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{reason=%q}", name, reason)
	return 0
}
