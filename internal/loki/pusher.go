package loki

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/grafana/loki/pkg/push"
	"github.com/klauspost/compress/snappy"
)

// Entry is one log line of a stream.
type Entry struct {
	Time time.Time
	Line string
}

// Stream is a set of entries sharing stream labels.
type Stream struct {
	Labels  map[string]string
	Entries []Entry
}

// Pusher delivers streams to Loki. Push should honour ctx's deadline and
// return a *StatusError for HTTP answers other than 2xx, so the Shipper can
// tell retryable failures from permanent ones.
type Pusher interface {
	Push(ctx context.Context, streams []Stream) error
}

// StatusError is a push answered with a non-2xx status.
type StatusError struct {
	Code int
	// Body is the answer's text, at most its first KiB.
	Body string
	// Ignored and Judged are, when Judged > 0, the sums of N and M over
	// the "total ignored: N out of M" lines of the answer: how many
	// entries Loki rejected (each also listed on an "entry with timestamp
	// ... ignored, reason: ..." line) of how many it judged. Loki writes
	// one such line for a stream whose entries it partly or wholly
	// refused, and answers 400 although it stored the others. Answers
	// without such a line leave both 0: which entries were refused is
	// unknown.
	Ignored, Judged int
}

// Error implements error.
func (e *StatusError) Error() string {
	return fmt.Sprintf("loki answered %d %s: %s", e.Code, http.StatusText(e.Code), e.Body)
}

// Retryable reports whether the push should be retried: on 429 and 5xx.
func (e *StatusError) Retryable() bool {
	return e.Code == http.StatusTooManyRequests || e.Code >= 500
}

// retryable reports whether err is worth another attempt: 429, 5xx and
// anything that is not an HTTP answer (network errors, timeouts).
func retryable(err error) bool {
	var se *StatusError
	if errors.As(err, &se) {
		return se.Retryable()
	}
	return true
}

// HTTPPusher pushes to Loki's /loki/api/v1/push with a snappy-compressed
// protobuf PushRequest.
type HTTPPusher struct {
	url         string
	tenant      string
	username    string
	password    string
	bearerToken string
	client      *http.Client
}

// NewHTTPPusher returns a Pusher for cfg's URL, tenant and credentials.
// client may be nil for a dedicated client; timeouts come from Push's ctx.
func NewHTTPPusher(cfg Config, client *http.Client) (*HTTPPusher, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("loki pusher config: %w", err)
	}
	if client == nil {
		client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
	}
	u := strings.TrimSuffix(cfg.URL, "/")
	if !strings.HasSuffix(u, "/loki/api/v1/push") {
		u += "/loki/api/v1/push"
	}
	return &HTTPPusher{
		url:         u,
		tenant:      cfg.Tenant,
		username:    cfg.Username,
		password:    cfg.Password,
		bearerToken: cfg.BearerToken,
		client:      client,
	}, nil
}

// Push implements Pusher.
func (p *HTTPPusher) Push(ctx context.Context, streams []Stream) error {
	body, err := encodePush(streams)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.url, bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("building loki push request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("User-Agent", "crowsnest")
	if p.tenant != "" {
		req.Header.Set("X-Scope-OrgID", p.tenant)
	}
	switch {
	case p.username != "":
		req.SetBasicAuth(p.username, p.password)
	case p.bearerToken != "":
		req.Header.Set("Authorization", "Bearer "+p.bearerToken)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return fmt.Errorf("pushing to loki: %w", err)
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode/100 == 2 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return nil
	}
	// The whole answer (Loki lists up to 10 rejected entries, a few
	// hundred bytes each, before its total), but only its beginning in
	// the error's text.
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	se := &StatusError{Code: resp.StatusCode, Body: strings.TrimSpace(string(msg[:min(len(msg), 1024)]))}
	se.Ignored, se.Judged = ignoredCounts(string(msg))
	return fmt.Errorf("pushing to loki: %w", se)
}

// totalIgnored matches the line ending Loki's answer about the entries
// of one stream it refused: "user 'x', total ignored: N out of M for
// stream: {...}" (Loki 2.9 and later) or "total ignored: N out of M".
var totalIgnored = regexp.MustCompile(`total ignored: (\d+) out of (\d+)`)

// ignoredCounts returns the sums of N and M over the "total ignored: N out
// of M" lines of a Loki answer, 0 and 0 when it has none.
func ignoredCounts(body string) (ignored, judged int) {
	for _, m := range totalIgnored.FindAllStringSubmatch(body, -1) {
		n, err1 := strconv.Atoi(m[1])
		t, err2 := strconv.Atoi(m[2])
		if err1 != nil || err2 != nil || n > t {
			return 0, 0 // not Loki's count after all
		}
		ignored += n
		judged += t
	}
	return ignored, judged
}

// encodePush builds the snappy-compressed protobuf body of a push.
func encodePush(streams []Stream) ([]byte, error) {
	req := push.PushRequest{Streams: make([]push.Stream, 0, len(streams))}
	for _, s := range streams {
		ps := push.Stream{Labels: formatLabels(s.Labels), Entries: make([]push.Entry, 0, len(s.Entries))}
		for _, e := range s.Entries {
			ps.Entries = append(ps.Entries, push.Entry{Timestamp: e.Time, Line: e.Line})
		}
		req.Streams = append(req.Streams, ps)
	}
	raw, err := req.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshalling loki push request: %w", err)
	}
	return snappy.Encode(nil, raw), nil
}

// formatLabels renders labels the way Loki parses them: {a="x", b="y"},
// names sorted, values Go-quoted.
func formatLabels(m map[string]string) string {
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
