package clusters

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"k8s.io/client-go/rest"
)

// A rotated token is used once the refresh interval has passed; a config
// being rewritten (unreadable, or without a token) keeps the last one.
func TestBearerTokenRotates(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config")
	write := func(content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(configJSON(t, map[string]any{"bearerToken": "first"}))
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	src := newBearerSource(path, "first", time.Minute)
	src.now = func() time.Time { return now }
	src.readAt = now
	token := func() string {
		t.Helper()
		tok, err := src.Token()
		if err != nil {
			t.Fatal(err)
		}
		return tok.AccessToken
	}
	write(configJSON(t, map[string]any{"bearerToken": "second"}))
	for _, step := range []struct {
		after   time.Duration
		rewrite string // "" keeps the file
		want    string
	}{
		{30 * time.Second, "", "first"}, // not read again yet
		{30 * time.Second, "", "second"},
		{time.Minute, "{", "second"}, // half-written
		{time.Minute, `{"tlsClientConfig": {"insecure": true}}`, "second"},
		{time.Minute, configJSON(t, map[string]any{"bearerToken": "third"}), "third"},
	} {
		if step.rewrite != "" {
			write(step.rewrite)
		}
		now = now.Add(step.after)
		if got := token(); got != step.want {
			t.Errorf("after %v: token %q, want %q", step.after, got, step.want)
		}
	}
}

// A cluster Secret's client sends the Secret's token.
func TestBearerTokenSent(t *testing.T) {
	got := make(chan string, 1)
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case got <- r.Header.Get("Authorization"):
		default:
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"major":"1","minor":"37","gitVersion":"v1.37.2"}`))
	}))
	defer srv.Close()
	dir := t.TempDir()
	mount(t, dir, "spoke", map[string]string{"name": "spoke", "server": srv.URL,
		"config": configJSON(t, map[string]any{"bearerToken": secretToken, "tlsClientConfig": map[string]any{"insecure": true}})})
	cs, err := Load(dir)
	if err != nil || len(cs) != 1 {
		t.Fatalf("Load: %v %+v", err, cs)
	}
	client, err := rest.HTTPClientFor(cs[0].RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(srv.URL + "/version")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := <-got; h != "Bearer "+secretToken {
		t.Errorf("Authorization %q, want the Secret's bearer token", h)
	}
}
