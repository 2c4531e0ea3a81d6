// Package trace turns each finished sync operation into an OpenTelemetry
// trace: a root span for the operation, a span per phase and per wave (per
// attempt, with the backoff between attempts), resources as events, with
// deterministic ids so that two replicas or a restart never make two
// traces of one operation. The Emitter exports them over OTLP (gRPC or
// HTTP) or to standard output behind the queue every output shares
// (internal/queue).
package trace

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	oteltrace "go.opentelemetry.io/otel/trace"

	"github.com/crowsnest/crowsnest/internal/model"
	"github.com/crowsnest/crowsnest/internal/queue"
	"github.com/crowsnest/crowsnest/internal/redact"
)

// Exporters crowsnest can send spans to.
const (
	ExporterNone   = "none"
	ExporterOTLP   = "otlp"
	ExporterStdout = "stdout"
	ExporterFile   = "file"
)

// OTLP protocols.
const (
	ProtocolGRPC = "grpc"
	ProtocolHTTP = "http/protobuf"
)

// Config says where spans go.
type Config struct {
	// Exporter is ExporterNone, ExporterOTLP, ExporterStdout or
	// ExporterFile.
	Exporter string
	// Endpoint is the OTLP endpoint URL; empty leaves it to the
	// OTEL_EXPORTER_OTLP_* environment variables. For http/protobuf, a
	// URL without a path gets /v1/traces, as OTEL_EXPORTER_OTLP_ENDPOINT
	// does.
	Endpoint string
	// Protocol is ProtocolGRPC or ProtocolHTTP.
	Protocol string
	// Stdout receives spans, one JSON object per line, for ExporterStdout.
	Stdout io.Writer
	// File is where ExporterFile writes spans, one JSON object per line;
	// it is rewritten at each start.
	File string
	// QueueSize bounds the finished operations waiting to become spans;
	// 0 means DefaultQueueSize. The batch span processor bounds the spans
	// waiting for export (OTEL_BSP_MAX_QUEUE_SIZE, default 2048).
	QueueSize int
	// Version goes into the service.version resource attribute.
	Version string
	// FlushTimeout bounds the flush when the emitter stops; 0 means
	// DefaultFlushTimeout.
	FlushTimeout time.Duration
	// Gate reports whether this replica sends (leads); nil: always.
	Gate func() bool
}

// DefaultQueueSize is the default bound on operations waiting to become
// spans.
const DefaultQueueSize = 256

// DefaultFlushTimeout bounds the flush at shutdown.
const DefaultFlushTimeout = 10 * time.Second

// ResolveConfig fills what the flags left empty from the standard
// OpenTelemetry environment variables, looked up with getenv:
// OTEL_TRACES_EXPORTER (otlp, console, none), and
// OTEL_EXPORTER_OTLP_{TRACES_,}{PROTOCOL,ENDPOINT}. Without either an
// exporter or an endpoint, tracing is off. It fails on values it does not
// know, naming the variable or flag.
func ResolveConfig(c Config, getenv func(string) string) (Config, error) {
	if c.Exporter == "" {
		switch v := getenv("OTEL_TRACES_EXPORTER"); v {
		case "":
			if c.Endpoint != "" || getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" {
				c.Exporter = ExporterOTLP
			} else {
				c.Exporter = ExporterNone
			}
		case "otlp", "none":
			c.Exporter = v
		case "console":
			c.Exporter = ExporterStdout
		default:
			return c, fmt.Errorf("OTEL_TRACES_EXPORTER=%q: want otlp, console or none", v)
		}
	}
	switch c.Exporter {
	case ExporterNone, ExporterOTLP, ExporterStdout:
	case ExporterFile:
		if c.File == "" {
			return c, fmt.Errorf("--traces.exporter=file: --traces.file is empty, want the file to write spans to")
		}
	default:
		return c, fmt.Errorf("--traces.exporter=%q: want otlp, stdout, file or none", c.Exporter)
	}
	if c.Protocol == "" {
		for _, name := range []string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL"} {
			if v := getenv(name); v != "" {
				if v != ProtocolGRPC && v != ProtocolHTTP {
					return c, fmt.Errorf("%s=%q: want grpc or http/protobuf", name, v)
				}
				c.Protocol = v
				break
			}
		}
		if c.Protocol == "" {
			c.Protocol = ProtocolHTTP // the specification's default
		}
	}
	if c.Protocol != ProtocolGRPC && c.Protocol != ProtocolHTTP {
		return c, fmt.Errorf("--traces.otlp.protocol=%q: want grpc or http/protobuf", c.Protocol)
	}
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return c, fmt.Errorf("--traces.otlp.endpoint=%q: want a URL like http://tempo:4318", redact.Input(c.Endpoint))
		}
	}
	return c, nil
}

// Metrics count what happened to the spans.
type Metrics struct {
	dropped  *prometheus.CounterVec // the queue's
	exported prometheus.Counter
}

// Drop reasons of crowsnest_spans_dropped_total beside the queue's
// (queue_full, shutdown).
const (
	// ReasonExportFailed: the collector did not take the spans.
	ReasonExportFailed = "export_failed"
	// ReasonRejected: the collector answered a partial success refusing
	// them.
	ReasonRejected = "rejected"
)

// NewMetrics creates the span counters and registers them with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		dropped: queue.NewDropCounter("spans", "Spans of sync traces dropped, by reason: queue_full (the exporter fell behind), export_failed (the collector did not take them), rejected (the collector answered a partial success refusing them) or shutdown (not exported within the flush at shutdown).",
			ReasonExportFailed, ReasonRejected),
		exported: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "crowsnest_spans_exported_total",
			Help: "Spans of sync traces the collector accepted.",
		}),
	}
	reg.MustRegister(m.dropped, m.exported)
	return m
}

// Emitter turns finished operations into traces and exports them: Finished
// queues an operation and never blocks (see package queue); Run is the
// worker that records its spans, which the batch span processor exports.
// When the exporter falls behind, the bounded queue fills and operations
// are dropped, their spans counted.
type Emitter struct {
	cfg     Config
	metrics *Metrics
	logger  *slog.Logger
	res     *resource.Resource
	q       *queue.Queue[*model.Operation]
}

// NewEmitter returns an emitter exporting as c says (c must have been
// through ResolveConfig), or nil when the exporter is none. It starts
// nothing: the exporter and the batch span processor live in Run.
func NewEmitter(c Config, m *Metrics, logger *slog.Logger) (*Emitter, error) {
	if c.Exporter == ExporterNone {
		return nil, nil
	}
	res, err := resource.Merge(
		resource.NewSchemaless(attribute.String("service.name", "crowsnest"), attribute.String("service.version", c.Version)),
		resource.Environment(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
	)
	if err != nil {
		return nil, fmt.Errorf("reading OTEL_RESOURCE_ATTRIBUTES: %w", err)
	}
	q, err := newQueue(c, m)
	if err != nil {
		return nil, err
	}
	return &Emitter{cfg: c, metrics: m, logger: logger, res: res, q: q}, nil
}

// provider builds the exporter and the tracer provider with its batch
// span processor, which exports in goroutines of its own until Shutdown.
func (e *Emitter) provider(ctx context.Context) (*sdktrace.TracerProvider, error) {
	var exp sdktrace.SpanExporter
	var err error
	switch e.cfg.Exporter {
	case ExporterStdout:
		exp, err = stdouttrace.New(stdouttrace.WithWriter(e.cfg.Stdout))
	case ExporterFile:
		exp, err = fileExporter(e.cfg.File)
	default:
		exp, err = otlpExporter(ctx, e.cfg)
	}
	if err != nil {
		return nil, fmt.Errorf("creating the %s span exporter: %w", e.cfg.Exporter, err)
	}
	// The processor blocks the emitter's own goroutine, never the
	// tracker: the bounded queue in front of it is where spans drop.
	return sdktrace.NewTracerProvider(
		sdktrace.WithResource(e.res),
		sdktrace.WithIDGenerator(idGenerator{}),
		sdktrace.WithSampler(sdktrace.AlwaysSample()),
		sdktrace.WithSpanProcessor(sdktrace.NewBatchSpanProcessor(&countingExporter{SpanExporter: exp, metrics: e.metrics, logger: e.logger}, sdktrace.WithBlocking())),
	), nil
}

// newQueue returns the queue of finished operations, its drops weighed in
// spans.
func newQueue(c Config, m *Metrics) (*queue.Queue[*model.Operation], error) {
	size := c.QueueSize
	if size <= 0 {
		size = DefaultQueueSize
	}
	flush := c.FlushTimeout
	if flush <= 0 {
		flush = DefaultFlushTimeout
	}
	q, err := queue.New(queue.Config[*model.Operation]{Size: size, Dropped: m.dropped, Weight: spanCount, Gate: c.Gate, FlushTimeout: flush})
	if err != nil {
		return nil, fmt.Errorf("traces queue: %w", err)
	}
	return q, nil
}

// retryFor bounds how long an export retries: spans of a sync are worth
// little minutes later, and a long retry holds the whole batch queue. (The
// exporters' default is a minute; the batch processor's export timeout,
// OTEL_BSP_EXPORT_TIMEOUT, bounds it too.)
const retryFor = 15 * time.Second

func otlpExporter(ctx context.Context, c Config) (sdktrace.SpanExporter, error) {
	if c.Protocol == ProtocolGRPC {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithRetry(otlptracegrpc.RetryConfig{
			Enabled: true, InitialInterval: 500 * time.Millisecond, MaxInterval: 5 * time.Second, MaxElapsedTime: retryFor,
		})}
		if c.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpointURL(c.Endpoint))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithRetry(otlptracehttp.RetryConfig{
		Enabled: true, InitialInterval: 500 * time.Millisecond, MaxInterval: 5 * time.Second, MaxElapsedTime: retryFor,
	})}
	if c.Endpoint != "" {
		u, _ := url.Parse(c.Endpoint) // checked by ResolveConfig
		if strings.Trim(u.Path, "/") == "" {
			u.Path = "/v1/traces"
		}
		opts = append(opts, otlptracehttp.WithEndpointURL(u.String()))
	}
	return otlptracehttp.New(ctx, opts...)
}

// Finished queues the trace of op, or drops it when the queue is full.
func (e *Emitter) Finished(op *model.Operation) { e.q.Send(op) }

// Run is the worker: it starts the exporter, records the queued
// operations' spans until ctx ends, then flushes them (the batch span
// processor's too) within the flush timeout, shuts the exporter down and
// returns.
func (e *Emitter) Run(ctx context.Context) error {
	p, err := e.provider(context.WithoutCancel(ctx)) // the exporter outlives ctx until the flush ends
	if err != nil {
		return err
	}
	return e.q.Run(ctx, &worker{provider: p, tracer: p.Tracer("github.com/crowsnest/crowsnest/internal/trace"), logger: e.logger})
}

// worker records spans and flushes them.
type worker struct {
	provider *sdktrace.TracerProvider
	tracer   oteltrace.Tracer
	logger   *slog.Logger
}

// Deliver records the spans of the batch's operation.
func (w *worker) Deliver(ctx context.Context, ops []*model.Operation) {
	for _, op := range ops {
		record(ctx, w.tracer, op)
	}
}

// Flush exports what the batch span processor holds and shuts the
// provider down.
func (w *worker) Flush(ctx context.Context) error {
	if err := w.provider.Shutdown(ctx); err != nil {
		w.logger.Warn("traces not flushed", "err", err)
		return err
	}
	return nil
}

// spanCount is how many spans op makes.
func spanCount(op *model.Operation) int {
	n := 1 + len(op.Waves) + len(op.Blocked)
	if len(op.Attempts) > 0 {
		n += 2*len(op.Attempts) - 1 // an attempt span each, a backoff span between two
	}
	for i := range op.Waves {
		if i == 0 || op.Waves[i].Phase != op.Waves[i-1].Phase || op.Waves[i].Attempt != op.Waves[i-1].Attempt {
			n++
		}
	}
	return n
}

// countingExporter counts exported, rejected and failed spans. It logs
// when export starts failing and when it recovers, not every failure, and
// does not hand the error on: the SDK would report it to the global error
// handler.
type countingExporter struct {
	sdktrace.SpanExporter
	metrics   *Metrics
	logger    *slog.Logger
	failing   atomic.Bool
	rejecting atomic.Bool // the collector refused spans of the last export
}

// ExportSpans implements sdktrace.SpanExporter. A partial success (the
// collector took the export but refused some spans, see rejectedSpans)
// counts only the refused spans as dropped, reason rejected, and the rest
// as exported.
func (c *countingExporter) ExportSpans(ctx context.Context, spans []sdktrace.ReadOnlySpan) error {
	err := c.SpanExporter.ExportSpans(ctx, spans)
	rejected, partial := rejectedSpans(err)
	if err != nil && !partial {
		c.metrics.dropped.WithLabelValues(ReasonExportFailed).Add(float64(len(spans)))
		if !c.failing.Swap(true) {
			c.logger.Warn("exporting spans failed; dropping them until the collector answers", "spans", len(spans), "err", err)
		}
		return nil
	}
	rejected = min(rejected, int64(len(spans)))
	c.metrics.exported.Add(float64(int64(len(spans)) - rejected))
	c.metrics.dropped.WithLabelValues(ReasonRejected).Add(float64(rejected))
	if c.failing.Swap(false) {
		c.logger.Info("exporting spans works again")
	}
	switch {
	case rejected > 0 && !c.rejecting.Swap(true):
		c.logger.Warn("the collector refused some spans (OTLP partial success); dropping them", "rejected", rejected, "spans", len(spans), "err", err)
	case rejected > 0:
		c.logger.Debug("the collector refused some spans again", "rejected", rejected, "spans", len(spans), "err", err)
	case c.rejecting.Swap(false):
		c.logger.Info("the collector takes every span again")
	}
	if partial && rejected == 0 {
		c.logger.Debug("the collector took every span with a warning (OTLP partial success)", "spans", len(spans), "err", err)
	}
	return nil
}

// partialSuccess matches the text of the OTLP exporters' partial success
// error, "OTLP partial success: <message> (<n> spans rejected)" (type
// PartialSuccess of the exporters' internal packages, which no other
// package can name; its fields are not exposed any other way).
var partialSuccess = regexp.MustCompile(`(?s)OTLP partial success: .* \((\d+) spans rejected\)$`)

// rejectedSpans returns the spans the collector refused when err reports
// an OTLP partial success: the collector answered 2xx (HTTP) or OK (gRPC),
// keeping the other spans. It walks err's tree (the exporters wrap and
// join it: "traces export: ...") and sums the counts of its partial
// success errors. ok is false when err holds none: the export failed, or
// err is nil. An error joined beside a partial success (closing the
// answer's body) does not undo what the collector took.
func rejectedSpans(err error) (n int64, ok bool) {
	if err == nil {
		return 0, false
	}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			if k, found := rejectedSpans(e); found {
				n, ok = n+k, true
			}
		}
		return n, ok
	case interface{ Unwrap() error }:
		return rejectedSpans(u.Unwrap())
	}
	m := partialSuccess.FindStringSubmatch(err.Error())
	if m == nil {
		return 0, false
	}
	k, perr := strconv.ParseInt(m[1], 10, 64)
	if perr != nil {
		return 0, false
	}
	return k, true
}

// fileExporter writes spans as JSON lines to path, rewritten, and closes
// it when shut down.
func fileExporter(path string) (sdktrace.SpanExporter, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, fmt.Errorf("--traces.file: %w", err)
	}
	exp, err := stdouttrace.New(stdouttrace.WithWriter(f))
	if err != nil {
		f.Close()
		return nil, err
	}
	return &closingExporter{SpanExporter: exp, f: f}, nil
}

// closingExporter closes the file its exporter writes to when it shuts
// down.
type closingExporter struct {
	sdktrace.SpanExporter
	f *os.File
}

// Shutdown implements sdktrace.SpanExporter.
func (c *closingExporter) Shutdown(ctx context.Context) error {
	return errors.Join(c.SpanExporter.Shutdown(ctx), c.f.Close())
}
