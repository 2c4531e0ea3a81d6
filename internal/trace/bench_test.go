package trace

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// BenchmarkRecord turns one finished operation (3 waves, 3 resources, a
// a parent link) into its 6 spans, exported to memory.
func BenchmarkRecord(b *testing.B) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithIDGenerator(idGenerator{}), sdktrace.WithSyncer(exp))
	tracer := tp.Tracer("bench")
	op := sampleOperation()
	b.ReportAllocs()
	for b.Loop() {
		record(context.Background(), tracer, op)
		exp.Reset()
	}
}

// BenchmarkFinishedQueueFull is what the tracker pays per finished
// operation when the exporter has fallen behind: a failed non-blocking
// send and a count.
func BenchmarkFinishedQueueFull(b *testing.B) {
	m := NewMetrics(prometheus.NewRegistry())
	q, err := newQueue(Config{QueueSize: 1}, m)
	if err != nil {
		b.Fatal(err)
	}
	e := &Emitter{metrics: m, q: q}
	op := sampleOperation()
	e.Finished(op) // the queue is full from now on
	b.ReportAllocs()
	for b.Loop() {
		e.Finished(op)
	}
}
