package source

import (
	"bytes"
	"context"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"k8s.io/client-go/rest"

	"github.com/crowsnest/crowsnest/internal/argocd/client"
)

// listServer answers a list of every Application with one response, as
// kube-apiserver does from its watch cache, and holds watches open until
// the client leaves.
type listServer struct{ list []byte }

func (s listServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/apis/argoproj.io/v1alpha1/applications" {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Query().Get("watch") == "true" {
		w.WriteHeader(http.StatusOK)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		return
	}
	_, _ = w.Write(s.list)
}

// realisticListJSON is the list of apps realisticAppJSON 0 to n-1 as the
// API server sends it.
func realisticListJSON(n, resources int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"apiVersion":"argoproj.io/v1alpha1","items":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.Write(realisticAppJSON(i, resources))
	}
	b.WriteString(`],"kind":"ApplicationList","metadata":{"resourceVersion":"42"}}`)
	return b.Bytes()
}

// BenchmarkStartUp is crowsnest's share of start-up: the Kubernetes
// source's first list of 2,000 apps as the scale benchmark writes them,
// read from a TLS server in one response, decoded, trimmed and cached by
// the informer, handled by the tracker with the metric store subscribed,
// until the source is ready (every app handed on). The server only
// writes stored bytes, so nearly all the CPU is crowsnest's. In the scale
// benchmark (10,000 apps, the API server on the same 2 cores) crowsnest
// was ready half a second after the list's last byte.
func BenchmarkStartUp(b *testing.B) {
	const apps, resources = 2000, 50
	list := realisticListJSON(apps, resources)
	srv := httptest.NewTLSServer(listServer{list})
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	conf := benchConfig(b)
	b.SetBytes(int64(len(list)))
	b.ReportAllocs()
	for b.Loop() {
		c, err := client.NewForConfig(&rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}, QPS: -1})
		if err != nil {
			b.Fatal(err)
		}
		tr, store := newBenchTracker(conf)
		src := NewKubeSource(c, nil, NewSourceMetrics(prometheus.NewRegistry()), promslog.NewNopLogger())
		ctx, cancel := context.WithCancel(context.Background())
		var wg sync.WaitGroup
		wg.Go(func() { _ = src.Run(ctx, tr) })
		for !src.Ready() {
			time.Sleep(time.Millisecond)
		}
		cancel()
		wg.Wait()
		if n := store.Len(); n != apps {
			b.Fatalf("%d apps in the store, want %d", n, apps)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/apps, "µs/app")
}
