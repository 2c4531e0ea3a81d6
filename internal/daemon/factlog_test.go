package daemon

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/crowsnest/crowsnest/internal/model"
)

// The fact log line: the fact's name as message and as event, the app's
// identity, when it happened, its attributes in order, and the trace id of
// its operation when it has one; no trace_id key when it has none.
func TestFactLogger(t *testing.T) {
	var buf bytes.Buffer
	l := factLogger{slog.New(slog.NewJSONHandler(&buf, nil))}
	at := time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)
	l.Fact(&model.Fact{Name: model.FactSyncFinished, Time: at, App: "argocd/web", Project: "shop", Env: "prod",
		TraceID: "4bf92f3577b34da6a3ce929d0e0e4736", Attrs: []any{"result", "Succeeded", "duration_seconds", 12.5}})
	l.Fact(&model.Fact{Name: model.FactDriftBegan, Time: at, App: "argocd/web", Project: "shop", Env: "prod"})
	lines := bytes.Split(bytes.TrimSpace(buf.Bytes()), []byte("\n"))
	if len(lines) != 2 {
		t.Fatalf("%d lines, want 2:\n%s", len(lines), buf.String())
	}
	for i, want := range []map[string]any{
		{"level": "INFO", "msg": "sync finished", "event": "sync_finished", "app": "argocd/web", "project": "shop", "env": "prod",
			"at": "2026-12-07T09:00:00Z", "result": "Succeeded", "duration_seconds": 12.5, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736"},
		{"level": "INFO", "msg": "drift began", "event": "drift_began", "app": "argocd/web", "project": "shop", "env": "prod",
			"at": "2026-12-07T09:00:00Z"},
	} {
		var got map[string]any
		if err := json.Unmarshal(lines[i], &got); err != nil {
			t.Fatal(err)
		}
		delete(got, "time")
		if !reflect.DeepEqual(got, want) {
			t.Errorf("line %d: %v, want %v", i+1, got, want)
		}
	}
}
