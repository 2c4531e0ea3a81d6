package loki

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// line cuts the largest field values until the line fits, on character
// boundaries, counting JSON's escapes, and keeps it valid JSON.
func TestLineCutToLimit(t *testing.T) {
	at := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	base := func(fields map[string]any) Event {
		return Event{Time: at, Event: "sync_finished", App: "argocd/shop", Project: "payments", Env: "prod", TraceID: strings.Repeat("a", 32), Fields: fields}
	}
	for _, tc := range []struct {
		name    string
		fields  map[string]any
		limit   int
		wantCut []string
	}{
		{"fits", map[string]any{"message": "short"}, 1024, nil},
		{"no limit", map[string]any{"message": strings.Repeat("x", 1<<20)}, 0, nil},
		{"ascii", map[string]any{"message": strings.Repeat("x", 5000), "result": "Failed"}, 1024, []string{"message"}},
		{"escapes", map[string]any{"message": strings.Repeat(`<"\`, 2000)}, 1024, []string{"message"}},
		{"multibyte", map[string]any{"message": strings.Repeat("é😀", 2000)}, 1024, []string{"message"}},
		{"two large", map[string]any{"a": strings.Repeat("a", 3000), "b": strings.Repeat("b", 2000)}, 1024, []string{"a", "b"}},
		{"not a string", map[string]any{"resources": make([]int, 2000)}, 1024, []string{"resources"}},
		{"key named truncated", map[string]any{"truncated": strings.Repeat("x", 5000)}, 1024, []string{"truncated"}},
		{"only fixed keys fit", map[string]any{"message": strings.Repeat("x", 5000)}, 150, []string{"message"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := base(tc.fields)
			line, cut := e.line(tc.limit)
			if fmt.Sprint(cut) != fmt.Sprint(tc.wantCut) {
				t.Errorf("cut %v, want %v", cut, tc.wantCut)
			}
			if !json.Valid([]byte(line)) || !utf8.ValidString(line) {
				t.Fatalf("line is not valid JSON in UTF-8: %.200s", line)
			}
			if len(tc.wantCut) == 0 {
				if line != e.Line() {
					t.Errorf("uncut line differs from Line()")
				}
				return
			}
			fixed, _ := base(nil).line(0)
			if len(fixed) <= tc.limit && len(line) > tc.limit {
				t.Errorf("line is %d bytes, over the limit %d", len(line), tc.limit)
			}
			var got map[string]any
			if err := json.Unmarshal([]byte(line), &got); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(got["truncated"]) != fmt.Sprint(tc.wantCut) {
				t.Errorf(`"truncated" = %v, want %v`, got["truncated"], tc.wantCut)
			}
			for _, k := range tc.wantCut {
				name := k
				if fixedKey(k) {
					name = "field_" + k
				}
				v, _ := got[name].(string)
				kept, ok := strings.CutSuffix(v, "…")
				if v != "" && !ok {
					t.Errorf("%s = %.40q..., want it to end with …", name, v)
				}
				orig, isString := tc.fields[k].(string)
				if !isString {
					b, _ := json.Marshal(tc.fields[k])
					orig = string(b)
				}
				if !strings.HasPrefix(orig, kept) {
					t.Errorf("%s = %.40q..., not a beginning of the value", name, v)
				}
			}
			if tc.name == "ascii" && got["result"] != "Failed" {
				t.Errorf("result = %v, want the small field whole", got["result"])
			}
		})
	}
}
