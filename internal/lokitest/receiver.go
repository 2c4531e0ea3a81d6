// Package lokitest is an in-process Loki push receiver for tests. It speaks
// the real push protocol — HTTP POST /loki/api/v1/push with a
// snappy-compressed protobuf PushRequest (and the JSON form) — and keeps
// every entry it accepts. It can be told to fail the next requests with a
// status code, or to hang until released, to exercise a client's retries,
// timeouts and buffering.
package lokitest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/grafana/loki/pkg/push"
	"github.com/klauspost/compress/snappy"
)

// PushPath is the path Loki serves pushes on.
const PushPath = "/loki/api/v1/push"

// Entry is one received log line with the stream it was pushed on.
type Entry struct {
	// Labels are the stream labels, parsed.
	Labels map[string]string
	// Stream is the stream's label string as sent, e.g. {env="dev", job="x"}.
	Stream string
	// Time is the entry's timestamp.
	Time time.Time
	// Line is the log line.
	Line string
	// Tenant is the request's X-Scope-OrgID header ("" when absent).
	Tenant string
}

// Request describes one push request the receiver saw, whatever its fate.
type Request struct {
	// Time is when the request arrived.
	Time time.Time
	// Tenant is the X-Scope-OrgID header ("" when absent).
	Tenant string
	// ContentType is the Content-Type header.
	ContentType string
	// Authorization is the Authorization header ("" when absent).
	Authorization string
	// Status is the status answered; 0 when the client went away while the
	// request hung.
	Status int
	// Entries is the number of entries in the request (0 if not decoded).
	Entries int
}

// Receiver is a Loki push endpoint. The zero value is ready to use; it is
// safe for concurrent use.
type Receiver struct {
	mu       sync.Mutex
	entries  []Entry
	requests []Request
	failN    int
	failCode int
	hang     chan struct{} // non-nil while hanging; closed by Release
	hung     int           // requests currently hanging
	notify   chan struct{} // closed and replaced on every change
}

// FailNext makes the receiver answer the next n push requests with status
// (e.g. 429 or 500) without keeping their entries. n < 0 fails every
// request until FailNext(0, 0) is called.
func (r *Receiver) FailNext(n, status int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.failN, r.failCode = n, status
}

// Hang makes push requests block after reading their body, without
// answering, until Release is called or the client gives up (then they are
// recorded with Status 0 and their entries are not kept). Requests still
// waiting at Release are handled normally.
func (r *Receiver) Hang() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hang == nil {
		r.hang = make(chan struct{})
	}
}

// Release ends Hang: hanging requests proceed and new ones are not held.
func (r *Receiver) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.hang != nil {
		close(r.hang)
		r.hang = nil
	}
}

// Hung returns the number of requests hanging right now.
func (r *Receiver) Hung() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.hung
}

// Entries returns a copy of every entry accepted so far, in arrival order.
func (r *Receiver) Entries() []Entry {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Entry(nil), r.entries...)
}

// Requests returns every push request seen so far, in arrival order,
// including failed and abandoned ones.
func (r *Receiver) Requests() []Request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Request(nil), r.requests...)
}

// WaitEntries waits until at least n entries were accepted and returns
// them, or returns an error when ctx ends first.
func (r *Receiver) WaitEntries(ctx context.Context, n int) ([]Entry, error) {
	for {
		r.mu.Lock()
		if len(r.entries) >= n {
			out := append([]Entry(nil), r.entries...)
			r.mu.Unlock()
			return out, nil
		}
		ch := r.changed()
		got := len(r.entries)
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("lokitest: waiting for %d entries, got %d: %w", n, got, ctx.Err())
		}
	}
}

// WaitRequests waits until at least n requests arrived (counting hanging
// ones) and returns them, or returns an error when ctx ends first.
func (r *Receiver) WaitRequests(ctx context.Context, n int) ([]Request, error) {
	for {
		r.mu.Lock()
		if len(r.requests)+r.hung >= n {
			out := append([]Request(nil), r.requests...)
			r.mu.Unlock()
			return out, nil
		}
		ch := r.changed()
		got := len(r.requests) + r.hung
		r.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, fmt.Errorf("lokitest: waiting for %d requests, got %d: %w", n, got, ctx.Err())
		}
	}
}

// changed returns a channel closed at the next change. Call with r.mu held.
func (r *Receiver) changed() chan struct{} {
	if r.notify == nil {
		r.notify = make(chan struct{})
	}
	return r.notify
}

// broadcast wakes waiters. Call with r.mu held.
func (r *Receiver) broadcast() {
	if r.notify != nil {
		close(r.notify)
		r.notify = nil
	}
}

// ServeHTTP implements the Loki push API on PushPath.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != PushPath {
		http.NotFound(w, req)
		return
	}
	if req.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	rec := Request{
		Time:          time.Now(),
		Tenant:        req.Header.Get("X-Scope-OrgID"),
		ContentType:   req.Header.Get("Content-Type"),
		Authorization: req.Header.Get("Authorization"),
	}

	// Read the body first, as Loki does: only then does net/http notice a
	// client that gives up, so abandoned requests are not recorded as
	// accepted once released.
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, fmt.Sprintf("lokitest: reading body: %v", err), http.StatusBadRequest)
		return
	}

	r.mu.Lock()
	if hang := r.hang; hang != nil {
		r.hung++
		r.broadcast()
		r.mu.Unlock()
		select {
		case <-hang:
		case <-req.Context().Done():
		}
		r.mu.Lock()
		r.hung--
		if req.Context().Err() != nil { // the client gave up
			r.requests = append(r.requests, rec)
			r.broadcast()
			r.mu.Unlock()
			return
		}
	}
	if r.failN != 0 {
		if r.failN > 0 {
			r.failN--
		}
		rec.Status = r.failCode
		r.requests = append(r.requests, rec)
		r.broadcast()
		r.mu.Unlock()
		http.Error(w, fmt.Sprintf("lokitest: told to fail with %d", rec.Status), rec.Status)
		return
	}
	r.mu.Unlock()

	entries, err := decode(req.Header.Get("Content-Type"), body)
	if err != nil {
		rec.Status = http.StatusBadRequest
		r.record(rec, nil)
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	for i := range entries {
		entries[i].Tenant = rec.Tenant
	}
	rec.Status = http.StatusNoContent
	rec.Entries = len(entries)
	r.record(rec, entries)
	w.WriteHeader(http.StatusNoContent)
}

func (r *Receiver) record(rec Request, entries []Entry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, rec)
	r.entries = append(r.entries, entries...)
	r.broadcast()
}

func decode(ct string, body []byte) ([]Entry, error) {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	switch strings.TrimSpace(ct) {
	case "application/x-protobuf", "":
		return decodeProto(body)
	case "application/json":
		return decodeJSON(body)
	default:
		return nil, fmt.Errorf("unsupported content type %q", ct)
	}
}

func decodeProto(body []byte) ([]Entry, error) {
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return nil, fmt.Errorf("snappy-decoding body: %w", err)
	}
	var pr push.PushRequest
	if err := pr.Unmarshal(raw); err != nil {
		return nil, fmt.Errorf("unmarshalling PushRequest: %w", err)
	}
	var out []Entry
	for _, s := range pr.Streams {
		lbls, err := ParseLabels(s.Labels)
		if err != nil {
			return nil, err
		}
		for _, e := range s.Entries {
			out = append(out, Entry{Labels: lbls, Stream: s.Labels, Time: e.Timestamp, Line: e.Line})
		}
	}
	return out, nil
}

// jsonPush is Loki's JSON push body.
type jsonPush struct {
	Streams []struct {
		Stream map[string]string `json:"stream"`
		Values [][]string        `json:"values"`
	} `json:"streams"`
}

func decodeJSON(body []byte) ([]Entry, error) {
	var p jsonPush
	if err := json.Unmarshal(body, &p); err != nil {
		return nil, fmt.Errorf("unmarshalling JSON push: %w", err)
	}
	var out []Entry
	for _, s := range p.Streams {
		str := FormatLabels(s.Stream)
		for _, v := range s.Values {
			if len(v) < 2 {
				return nil, errors.New("JSON push value needs [timestamp, line]")
			}
			ns, err := strconv.ParseInt(v[0], 10, 64)
			if err != nil {
				return nil, fmt.Errorf("JSON push timestamp %q: %w", v[0], err)
			}
			out = append(out, Entry{Labels: s.Stream, Stream: str, Time: time.Unix(0, ns), Line: v[1]})
		}
	}
	return out, nil
}

// ParseLabels parses a Loki stream selector such as
// {env="dev", event="sync_finished"} into a map. Values use Go string
// escaping, as Loki and Prometheus write them.
func ParseLabels(s string) (map[string]string, error) {
	in := strings.TrimSpace(s)
	if !strings.HasPrefix(in, "{") || !strings.HasSuffix(in, "}") {
		return nil, fmt.Errorf("labels %q: not enclosed in braces", s)
	}
	in = strings.TrimSpace(in[1 : len(in)-1])
	out := map[string]string{}
	for in != "" {
		eq := strings.IndexByte(in, '=')
		if eq <= 0 {
			return nil, fmt.Errorf("labels %q: expected name=\"value\"", s)
		}
		name := strings.TrimSpace(in[:eq])
		rest := strings.TrimSpace(in[eq+1:])
		q, err := strconv.QuotedPrefix(rest)
		if err != nil {
			return nil, fmt.Errorf("labels %q: value of %s: %w", s, name, err)
		}
		v, err := strconv.Unquote(q)
		if err != nil {
			return nil, fmt.Errorf("labels %q: value of %s: %w", s, name, err)
		}
		out[name] = v
		in = strings.TrimSpace(rest[len(q):])
		if in != "" {
			if in[0] != ',' {
				return nil, fmt.Errorf("labels %q: expected ',' after %s", s, name)
			}
			in = strings.TrimSpace(in[1:])
		}
	}
	return out, nil
}

// FormatLabels renders labels as a Loki stream selector with sorted names,
// e.g. {env="dev", job="crowsnest"}.
func FormatLabels(m map[string]string) string {
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(m[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// Start serves the receiver on a free loopback port and returns its base
// URL (http://127.0.0.1:port, without the push path) and a stop function
// that releases hanging requests and closes the server.
func (r *Receiver) Start() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, fmt.Errorf("lokitest: listening: %w", err)
	}
	srv := &http.Server{Handler: r, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() {
		r.Release()
		_ = srv.Close()
	}, nil
}
