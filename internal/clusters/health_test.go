package clusters

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"k8s.io/client-go/rest"
)

// A spoke that stops answering shows as down, and as up again once it
// answers, on its own; the token never reaches the log.
func TestHealthFollowsTheClusterUpAndDown(t *testing.T) {
	var down atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() || r.URL.Path != "/version" || r.Header.Get("Authorization") != "Bearer "+secretToken {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"major":"1","minor":"37","gitVersion":"v1.37.2"}`))
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	h := NewHealth(reg)
	h.interval = 20 * time.Millisecond
	c := &Cluster{Name: "prod-eu", Server: srv.URL, config: &rest.Config{Host: srv.URL, BearerToken: secretToken}}
	var logs bytes.Buffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, c, slog.New(slog.NewTextHandler(&logs, nil))) }()
	want := func(v float64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for testutil.ToFloat64(h.up.WithLabelValues(srv.URL, "prod-eu")) != v {
			if time.Now().After(deadline) {
				t.Fatalf("crowsnest_cluster_up never %v", v)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	want(1)
	down.Store(true)
	want(0)
	down.Store(false)
	want(1)
	cancel()
	if err := <-done; err != nil {
		t.Error(err)
	}
	log := logs.String()
	if strings.Count(log, "cluster unreachable") != 1 || strings.Count(log, "cluster reachable") != 1 {
		t.Errorf("want one line down, one back:\n%s", log)
	}
	if strings.Contains(log, secretToken) {
		t.Errorf("the token is in the log:\n%s", log)
	}
	if n := testutil.CollectAndCount(reg, "crowsnest_cluster_up"); n != 1 {
		t.Errorf("%d series, want 1", n)
	}
}
