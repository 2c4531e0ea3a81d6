//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// jaegerReadyTimeout bounds Jaeger's start-up (it is ready in well under a
// second).
const jaegerReadyTimeout = 30 * time.Second

// Jaeger is a real Jaeger v2 (an OpenTelemetry Collector distribution) on
// loopback ports: an OTLP/HTTP receiver writing straight into in-memory
// storage, and Jaeger's query API reading it. It opens three ports and no
// others: OTLPEndpoint's, QueryURL's and the query service's gRPC port, which
// the kernel picks.
type Jaeger struct {
	*Process
	// OTLPEndpoint is the base URL of the OTLP/HTTP receiver,
	// http://127.0.0.1:PORT: what crowsnest's --traces.otlp.endpoint takes
	// with --traces.otlp.protocol=http/protobuf (crowsnest appends
	// /v1/traces to a URL without a path).
	OTLPEndpoint string
	// QueryURL is the base URL of the query API (/api/traces/{id},
	// /api/traces?service=..., /api/services, /api/v3/...).
	QueryURL string
	client   *http.Client
}

// ErrTraceNotFound is what Jaeger.Trace wraps when Jaeger holds no span of
// the trace (yet): callers poll on it with errors.Is.
const ErrTraceNotFound = jaegerError("trace not found")

// jaegerError is an error that can be a constant.
type jaegerError string

func (e jaegerError) Error() string { return string(e) }

// jaegerConfig is the collector configuration: OTLP/HTTP in, no
// processors (spans are stored as they arrive, so a trace is readable as
// soon as the export returns), memory storage, the query extension with
// its own tracing off (it would export to localhost:4317), and no internal
// telemetry (whose Prometheus endpoint would take :8888). The all-in-one
// default configuration would open 4317, 4318, 5778, 5779, 6831, 6832,
// 8888, 9411, 13133, 14250, 14268, 16685, 16686, 27777 and 27778.
const jaegerConfig = `service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: info
extensions:
  jaeger_storage:
    backends:
      memstore:
        memory:
          max_traces: 100000
  jaeger_query:
    storage:
      traces: memstore
    enable_tracing: false
    http:
      endpoint: 127.0.0.1:%[2]d
    grpc:
      endpoint: 127.0.0.1:0
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:%[1]d
exporters:
  jaeger_storage_exporter:
    trace_storage: memstore
`

// StartJaeger starts Jaeger with an empty in-memory store and waits until
// both its OTLP receiver and its query API answer.
func (e *Env) StartJaeger() *Jaeger {
	e.t.Helper()
	dir := e.Dir("jaeger")
	otlpPort, queryPort := e.Port(), e.Port()
	cfg := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, jaegerConfig, otlpPort, queryPort), 0o600); err != nil {
		e.t.Fatalf("write Jaeger config: %v", err)
	}
	j := &Jaeger{
		OTLPEndpoint: fmt.Sprintf("http://127.0.0.1:%d", otlpPort),
		QueryURL:     fmt.Sprintf("http://127.0.0.1:%d", queryPort),
		client:       &http.Client{Timeout: 5 * time.Second},
	}
	e.t.Cleanup(j.client.CloseIdleConnections)
	j.Process = e.NewProcess("jaeger", bin.jaeger, "--config="+cfg)
	j.Start()
	// Extensions start before the pipelines: the query API answering does
	// not mean the receiver listens.
	waitHTTP200(e, j.Process, j.QueryURL+"/api/services")
	eventually(e.t, jaegerReadyTimeout, func() error {
		if err := j.checkAlive(); err != nil {
			return err
		}
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", otlpPort), time.Second)
		if err != nil {
			return fmt.Errorf("jaeger's OTLP receiver: %w", err)
		}
		return c.Close()
	})
	return j
}

// JaegerTrace is a trace as Jaeger's query API returns it.
type JaegerTrace struct {
	TraceID string
	// Spans are sorted by start time, then name.
	Spans []JaegerSpan
}

// JaegerSpan is one span of a JaegerTrace, flattened.
type JaegerSpan struct {
	// TraceID, SpanID and ParentSpanID are lower-case hex; ParentSpanID
	// is empty for a root span.
	TraceID, SpanID, ParentSpanID string
	// Name is the span's name (Jaeger's operationName).
	Name string
	// Service is the service.name of the span's resource.
	Service string
	// Start and Duration have microsecond precision: Jaeger's API cuts
	// the rest.
	Start    time.Time
	Duration time.Duration
	// Attrs are the span's attributes as text (numbers and booleans
	// formatted as JSON), plus what Jaeger derives from the OTLP span:
	// span.kind (internal, server, client...), otel.scope.name, and for
	// a span whose status is Error: error=true, otel.status_code=ERROR and
	// otel.status_description (the status message).
	Attrs map[string]string
	// Resource holds the resource's attributes other than service.name.
	Resource map[string]string
	// Events are the span's events (Jaeger's logs), in their order.
	Events []JaegerEvent
}

// JaegerEvent is a span event.
type JaegerEvent struct {
	Name  string
	Time  time.Time
	Attrs map[string]string
}

// Root returns the trace's spans without a parent.
func (t *JaegerTrace) Root() []JaegerSpan {
	var roots []JaegerSpan
	for _, s := range t.Spans {
		if s.ParentSpanID == "" {
			roots = append(roots, s)
		}
	}
	return roots
}

// Children returns the spans whose parent is spanID.
func (t *JaegerTrace) Children(spanID string) []JaegerSpan {
	var children []JaegerSpan
	for _, s := range t.Spans {
		if s.ParentSpanID == spanID {
			children = append(children, s)
		}
	}
	return children
}

// jaegerKeyValue is a tag of Jaeger's API (span tags, process tags, log
// fields); Value is a JSON string, number or boolean.
type jaegerKeyValue struct {
	Key   string          `json:"key"`
	Type  string          `json:"type"`
	Value json.RawMessage `json:"value"`
}

// jaegerTraces is the answer of GET /api/traces/{id} (and of searches).
type jaegerTraces struct {
	Data []struct {
		TraceID string `json:"traceID"`
		Spans   []struct {
			TraceID       string `json:"traceID"`
			SpanID        string `json:"spanID"`
			OperationName string `json:"operationName"`
			References    []struct {
				RefType string `json:"refType"`
				TraceID string `json:"traceID"`
				SpanID  string `json:"spanID"`
			} `json:"references"`
			StartTime int64            `json:"startTime"` // µs since the epoch
			Duration  int64            `json:"duration"`  // µs
			Tags      []jaegerKeyValue `json:"tags"`
			Logs      []struct {
				Timestamp int64            `json:"timestamp"` // µs since the epoch
				Fields    []jaegerKeyValue `json:"fields"`
			} `json:"logs"`
			ProcessID string `json:"processID"`
		} `json:"spans"`
		Processes map[string]struct {
			ServiceName string           `json:"serviceName"`
			Tags        []jaegerKeyValue `json:"tags"`
		} `json:"processes"`
	} `json:"data"`
	Errors []struct {
		Code int    `json:"code"`
		Msg  string `json:"msg"`
	} `json:"errors"`
}

// Trace reads the trace traceID (32 hex digits) from Jaeger's query API. If
// Jaeger holds no span of it the error wraps ErrTraceNotFound.
func (j *Jaeger) Trace(ctx context.Context, traceID string) (*JaegerTrace, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.QueryURL+"/api/traces/"+url.PathEscape(traceID), nil)
	if err != nil {
		return nil, fmt.Errorf("jaeger trace %s: %w", traceID, err)
	}
	resp, err := j.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jaeger trace %s: %w", traceID, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("jaeger trace %s: read answer: %w", traceID, err)
	}
	if resp.StatusCode == http.StatusNotFound {
		return nil, fmt.Errorf("jaeger trace %s: %w", traceID, ErrTraceNotFound)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("jaeger trace %s: %s: %s", traceID, resp.Status, body)
	}
	var r jaegerTraces
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("jaeger trace %s: decode %s: %w", traceID, body, err)
	}
	if len(r.Data) == 0 {
		return nil, fmt.Errorf("jaeger trace %s: %w", traceID, ErrTraceNotFound)
	}
	d := r.Data[0]
	t := &JaegerTrace{TraceID: d.TraceID}
	for _, s := range d.Spans {
		proc := d.Processes[s.ProcessID]
		span := JaegerSpan{
			TraceID:  s.TraceID,
			SpanID:   s.SpanID,
			Name:     s.OperationName,
			Service:  proc.ServiceName,
			Start:    time.UnixMicro(s.StartTime),
			Duration: time.Duration(s.Duration) * time.Microsecond,
			Attrs:    jaegerTags(s.Tags),
			Resource: jaegerTags(proc.Tags),
		}
		for _, ref := range s.References {
			if ref.RefType == "CHILD_OF" && ref.TraceID == s.TraceID {
				span.ParentSpanID = ref.SpanID
				break
			}
		}
		for _, l := range s.Logs {
			attrs := jaegerTags(l.Fields)
			ev := JaegerEvent{Name: attrs["event"], Time: time.UnixMicro(l.Timestamp), Attrs: attrs}
			delete(attrs, "event")
			span.Events = append(span.Events, ev)
		}
		t.Spans = append(t.Spans, span)
	}
	sort.SliceStable(t.Spans, func(a, b int) bool {
		sa, sb := t.Spans[a], t.Spans[b]
		if !sa.Start.Equal(sb.Start) {
			return sa.Start.Before(sb.Start)
		}
		return sa.Name < sb.Name
	})
	return t, nil
}

// jaegerTags turns Jaeger's tags into text: strings as they are, other
// values (numbers, booleans) as their JSON; binary values are base64.
func jaegerTags(tags []jaegerKeyValue) map[string]string {
	m := make(map[string]string, len(tags))
	for _, kv := range tags {
		var s string
		if json.Unmarshal(kv.Value, &s) != nil {
			s = string(kv.Value)
		}
		m[kv.Key] = s
	}
	return m
}
