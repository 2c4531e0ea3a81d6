// Package loki ships crowsnest's tracker events (sync started/finished,
// drift, health changes...) to Loki as JSON log lines, without ever
// blocking the caller: the bounded queue every output shares
// (internal/queue) in front of a batching, retrying pusher, with drops
// counted in Prometheus.
//
// # Why not loki-client-go's client
//
// github.com/grafana/loki-client-go's loki.Client does not fit: its Handle
// sends on an unbuffered channel (it blocks while a push retries), it counts
// nothing we can attribute to a reason, it registers promtail_* metrics on
// the global Prometheus registry in an init function (package-level state,
// and a conflict risk), its only shutdown is Stop without a deadline, and
// importing it drags in github.com/prometheus/prometheus for one label
// parser. So this package keeps its own queue, batching and counters and
// does the HTTP POST itself. It takes only the wire type it pushes:
// push.PushRequest from github.com/grafana/loki/pkg/push (the module
// loki-client-go pins), marshalled with gogo protobuf and snappy block
// compression — klauspost/compress's snappy, already in the module graph,
// produces the same format. Retries go through github.com/cenkalti/backoff/v5,
// the one backoff library of crowsnest's retry loops, with loki-client-go's
// schedule kept: waits from MinBackoff doubling to MaxBackoff, with jitter.
// Neither forces an upgrade of any module crowsnest already uses.
package loki

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"
	"unicode/utf8"

	"github.com/crowsnest/crowsnest/internal/model"
)

// FromFact turns a tracker fact into a Loki event: its key/value pairs
// become the line's fields.
func FromFact(f *model.Fact) Event {
	e := Event{Time: f.Time, Event: f.Name, App: f.App, Project: f.Project, Env: f.Env, DestCluster: f.Dest, TraceID: f.TraceID, Fields: make(map[string]any, len(f.Attrs)/2)}
	for i := 0; i+1 < len(f.Attrs); i += 2 {
		if k, ok := f.Attrs[i].(string); ok {
			e.Fields[k] = f.Attrs[i+1]
		}
	}
	return e
}

// Event is one fact observed by the tracker.
type Event struct {
	// Time is when it happened, the line's "ts" (Argo CD's times: an
	// operation's startedAt may be hours old); the zero time means "when
	// sent". The Loki entry is stamped with when it was sent, whatever
	// Time says.
	Time time.Time
	// Event is what happened, one of model's Fact* names (sync_started...).
	Event string
	// App is the Argo CD Application as namespace/name.
	App string
	// Project is the Argo CD project.
	Project string
	// Env is the environment the app belongs to.
	Env string
	// DestCluster names the cluster the app deploys to (model.AppView.Dest).
	DestCluster string
	// TraceID is the trace of the sync it belongs to, or empty.
	TraceID string
	// Fields holds extra details (result, duration_seconds, revision,
	// phase, wave, from, to, message...). Keys that collide with the fixed
	// keys of the line are written with a "field_" prefix.
	Fields map[string]any
}

// fixedKey reports whether k is one of the keys every line starts with.
func fixedKey(k string) bool {
	switch k {
	case "ts", "event", "app", "project", "env", "dest_cluster", "trace_id", truncatedKey:
		return true
	}
	return false
}

// truncatedKey is the key listing, in a line cut to size, the fields whose
// values were cut.
const truncatedKey = "truncated"

// ellipsis ends a value cut to size.
const ellipsis = "…"

// Line renders the event as one JSON object: ts (RFC 3339 with
// nanoseconds, UTC), event, app, project, env, dest_cluster, trace_id, then the fields in
// key order. A field value that cannot be marshalled is written as its
// fmt %v text.
func (e Event) Line() string {
	line, _ := e.line(0)
	return line
}

// line renders the event as Line does, but at most limit bytes long when
// limit > 0: while the line is longer, the largest field value is cut to
// a JSON string of its text's beginning (on a character boundary) ending
// with "…", and the line ends with "truncated", the sorted keys of the cut
// fields. The line stays valid JSON. It returns those keys, none when
// nothing was cut. Only the fields are cut: the fixed keys are short, and
// a line that is still too long when every field is empty is returned so.
func (e Event) line(limit int) (string, []string) {
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	vals := make([][]byte, len(keys))
	for i, k := range keys {
		v, err := json.Marshal(e.Fields[k])
		if err != nil {
			v, _ = json.Marshal(fmt.Sprintf("%v", e.Fields[k]))
		}
		vals[i] = v
	}
	cut := make([]bool, len(keys))
	texts := make([]string, len(keys)) // the uncut text of each cut value
	var cutKeys []string
	line := e.render(keys, vals, nil)
	for limit > 0 && len(line) > limit {
		i := -1 // the largest value that can still shrink
		for j, v := range vals {
			if len(v) > len(`""`) && (i < 0 || len(v) > len(vals[i])) {
				i = j
			}
		}
		if i < 0 {
			break
		}
		excess := len(line) - limit
		if !cut[i] { // the marker grows by the key
			excess += len(keys[i]) + len(`"",`)
			if len(cutKeys) == 0 {
				excess += len(`,"":[]`) + len(truncatedKey)
			}
		}
		if !cut[i] {
			cut[i] = true
			cutKeys = append(cutKeys, keys[i])
			sort.Strings(cutKeys)
			texts[i] = string(vals[i]) // a value other than a string: its JSON text
			if s, ok := e.Fields[keys[i]].(string); ok {
				texts[i] = s
			}
		}
		vals[i] = cutJSON(texts[i], len(vals[i])-excess)
		line = e.render(keys, vals, cutKeys)
	}
	return line, cutKeys
}

// render writes the line of Line with the fields' JSON values vals, in
// the order of keys, and the truncated key when cutKeys is not empty.
func (e Event) render(keys []string, vals [][]byte, cutKeys []string) string {
	var b bytes.Buffer
	n := 160
	for i := range keys {
		n += len(keys[i]) + len(vals[i]) + 4
	}
	b.Grow(n)
	b.WriteString(`{"ts":`)
	writeJSON(&b, e.Time.UTC().Format(time.RFC3339Nano))
	for _, kv := range [...][2]string{{"event", e.Event}, {"app", e.App}, {"project", e.Project}, {"env", e.Env}, {"dest_cluster", e.DestCluster}, {"trace_id", e.TraceID}} {
		b.WriteString(`,"` + kv[0] + `":`)
		writeJSON(&b, kv[1])
	}
	for i, k := range keys {
		name := k
		if fixedKey(k) {
			name = "field_" + k
		}
		b.WriteByte(',')
		writeJSON(&b, name)
		b.WriteByte(':')
		b.Write(vals[i])
	}
	if len(cutKeys) > 0 {
		b.WriteString(`,"` + truncatedKey + `":[`)
		for i, k := range cutKeys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSON(&b, k)
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.String()
}

// cutJSON returns the JSON string of the longest beginning of text, cut on
// a character boundary and followed by "…", whose encoding is at most
// budget bytes; "" when not even the ellipsis fits.
func cutJSON(text string, budget int) []byte {
	encode := func(n int) []byte {
		for n > 0 && n < len(text) && !utf8.RuneStart(text[n]) {
			n--
		}
		v, _ := json.Marshal(text[:n] + ellipsis) // a string always marshals
		return v
	}
	if len(encode(0)) > budget {
		return []byte(`""`)
	}
	// The encoding's length grows with n: find the largest n that fits.
	lo, hi := 0, len(text)
	for lo < hi {
		mid := lo + (hi-lo+1)/2
		if len(encode(mid)) <= budget {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return encode(lo)
}

func writeJSON(b *bytes.Buffer, s string) {
	v, _ := json.Marshal(s) // a string always marshals
	b.Write(v)
}

// streamLabels returns the low-cardinality labels of the event's stream:
// job, env, project, dest_cluster and event. Empty values are left out,
// as Loki would. The destination cluster keeps two clusters' apps of one
// name apart; like env and project, there are few of them.
func streamLabels(job string, e Event) map[string]string {
	m := map[string]string{"job": job}
	if e.Env != "" {
		m["env"] = e.Env
	}
	if e.Project != "" {
		m["project"] = e.Project
	}
	if e.DestCluster != "" {
		m["dest_cluster"] = e.DestCluster
	}
	if e.Event != "" {
		m["event"] = e.Event
	}
	return m
}
