// Package events ships crowsnest's tracker events (sync started/finished,
// drift, health changes...) to Loki as JSON log lines, without ever
// blocking the caller: a bounded buffer in front of a single batching,
// retrying pusher, with drops counted in Prometheus.
//
// # Why not loki-client-go's client
//
// github.com/grafana/loki-client-go's loki.Client does not fit: its Handle
// sends on an unbuffered channel (it blocks while a push retries), it counts
// nothing we can attribute to a reason, it registers promtail_* metrics on
// the global Prometheus registry in an init function (package-level state,
// and a conflict risk), its only shutdown is Stop without a deadline, and
// importing it drags in github.com/prometheus/prometheus for one label
// parser. So this package keeps its own buffer, batching and counters and
// does the HTTP POST itself. It takes only the wire type it pushes:
// push.PushRequest from github.com/grafana/loki/pkg/push (the module
// loki-client-go pins), marshalled with gogo protobuf and snappy block
// compression — klauspost/compress's snappy, already in the module graph,
// produces the same format. Retries go through github.com/cenkalti/backoff/v5,
// the one backoff library of crowsnest's retry loops, with loki-client-go's
// schedule kept: waits from MinBackoff doubling to MaxBackoff, with jitter.
// Neither forces an upgrade of any module crowsnest already uses.
package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/crowsnest/crowsnest/internal/model"
)

// FromFact turns a tracker fact into a Loki event: its key/value pairs
// become the line's fields.
func FromFact(f *model.Fact) Event {
	e := Event{Time: f.Time, Event: f.Name, App: f.App, Project: f.Project, Env: f.Env, TraceID: f.TraceID, Fields: make(map[string]any, len(f.Attrs)/2)}
	for i := 0; i+1 < len(f.Attrs); i += 2 {
		if k, ok := f.Attrs[i].(string); ok {
			e.Fields[k] = f.Attrs[i+1]
		}
	}
	return e
}

// Event is one fact observed by the tracker.
type Event struct {
	// Time is when it happened; the zero time means "when sent".
	Time time.Time
	// Event is what happened, one of model's Fact* names (sync_started...).
	Event string
	// App is the Argo CD Application as namespace/name.
	App string
	// Project is the Argo CD project.
	Project string
	// Env is the environment the app belongs to.
	Env string
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
	case "ts", "event", "app", "project", "env", "trace_id":
		return true
	}
	return false
}

// Line renders the event as one JSON object: ts (RFC 3339 with
// nanoseconds, UTC), event, app, project, env, trace_id, then the fields in
// key order. A field value that cannot be marshalled is written as its
// fmt %v text.
func (e Event) Line() string {
	var b bytes.Buffer
	b.Grow(160 + 32*len(e.Fields))
	b.WriteString(`{"ts":`)
	writeJSON(&b, e.Time.UTC().Format(time.RFC3339Nano))
	for _, kv := range [...][2]string{{"event", e.Event}, {"app", e.App}, {"project", e.Project}, {"env", e.Env}, {"trace_id", e.TraceID}} {
		b.WriteString(`,"` + kv[0] + `":`)
		writeJSON(&b, kv[1])
	}
	keys := make([]string, 0, len(e.Fields))
	for k := range e.Fields {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		name := k
		if fixedKey(k) {
			name = "field_" + k
		}
		b.WriteByte(',')
		writeJSON(&b, name)
		b.WriteByte(':')
		v, err := json.Marshal(e.Fields[k])
		if err != nil {
			v, _ = json.Marshal(fmt.Sprintf("%v", e.Fields[k]))
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.String()
}

func writeJSON(b *bytes.Buffer, s string) {
	v, _ := json.Marshal(s) // a string always marshals
	b.Write(v)
}

// streamLabels returns the low-cardinality labels of the event's stream:
// job, env, project and event. Empty values are left out, as Loki would.
func streamLabels(job string, e Event) map[string]string {
	m := map[string]string{"job": job}
	if e.Env != "" {
		m["env"] = e.Env
	}
	if e.Project != "" {
		m["project"] = e.Project
	}
	if e.Event != "" {
		m["event"] = e.Event
	}
	return m
}
