package lokitest

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestParseLabels(t *testing.T) {
	m, err := ParseLabels(`{env="dev", event="sync_finished",job="a\"b, c"}`)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(m) != `map[env:dev event:sync_finished job:a"b, c]` {
		t.Errorf("got %v", m)
	}
	if s := FormatLabels(m); s != `{env="dev", event="sync_finished", job="a\"b, c"}` {
		t.Errorf("FormatLabels = %s", s)
	}
	for _, bad := range []string{`env="dev"`, `{env=dev}`, `{env="dev" job="x"}`, `{="x"}`} {
		if _, err := ParseLabels(bad); err == nil {
			t.Errorf("ParseLabels(%s) succeeded", bad)
		}
	}
}

func TestJSONPushAndFailNext(t *testing.T) {
	r := &Receiver{}
	url, stop, err := r.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	body := `{"streams":[{"stream":{"job":"x"},"values":[["1700000000000000000","hello"]]}]}`
	post := func() int {
		req, _ := http.NewRequest(http.MethodPost, url+PushPath, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Scope-OrgID", "t1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode
	}
	r.FailNext(1, 429)
	if c := post(); c != 429 {
		t.Errorf("first status %d, want 429", c)
	}
	if c := post(); c != 204 {
		t.Errorf("second status %d, want 204", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	got, err := r.WaitEntries(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	e := got[0]
	if e.Line != "hello" || e.Labels["job"] != "x" || e.Tenant != "t1" || !e.Time.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("entry = %+v", e)
	}
	if n := len(r.Requests()); n != 2 {
		t.Errorf("%d requests recorded, want 2", n)
	}
}
