package client

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
)

// apiServer answers GET /apis/argoproj.io/v1alpha1/namespaces/argocd/applications
// as kube-apiserver answers for a custom resource: keys sorted (items
// before metadata), pages of pageSize when a limit is asked, errors as a
// Status.
type apiServer struct {
	apps     int
	pageSize int
	mu       sync.Mutex
	queries  []string
	gzip     int // requests that asked for a compressed answer
}

func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.queries = append(s.queries, r.URL.RawQuery)
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		s.gzip++
	}
	s.mu.Unlock()
	if r.URL.Path != "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications" {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"the server could not find the requested resource","reason":"NotFound","code":404}`)
		return
	}
	q := r.URL.Query()
	from, to := 0, s.apps
	if q.Get("continue") != "" {
		from, _ = strconv.Atoi(q.Get("continue"))
	}
	next := ""
	if q.Get("limit") != "" && q.Get("limit") != "0" {
		to = min(from+s.pageSize, s.apps)
		if to < s.apps {
			next = strconv.Itoa(to)
		}
	}
	var items []string
	for i := from; i < to; i++ {
		items = append(items, fmt.Sprintf(`{"apiVersion":"argoproj.io/v1alpha1","kind":"Application","metadata":{"managedFields":[{"manager":"x"}],"name":"app-%d","namespace":"argocd","uid":"u%d"},"spec":{"destination":{},"project":"p","source":{"helm":{"values":"a: 1"},"repoURL":"https://git"}},"status":{"resources":[{"kind":"ConfigMap","name":"c","status":"Synced","syncWave":2,"health":{"status":"Healthy"}}],"sync":{"status":"Synced"}}}`, i, i))
	}
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, `{"apiVersion":"argoproj.io/v1alpha1","items":[%s],"kind":"ApplicationList","metadata":{"continue":%q,"resourceVersion":"42"}}`, strings.Join(items, ","), next)
}

func newTestClient(t *testing.T, h http.Handler) *Clientset {
	t.Helper()
	// TLS, as an API server: client-go gives a config without TLS
	// settings Go's default transport, whatever DisableCompression says.
	srv := httptest.NewTLSServer(h)
	t.Cleanup(srv.Close)
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	c, err := NewForConfig(&rest.Config{Host: srv.URL, TLSClientConfig: rest.TLSClientConfig{CAData: ca}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// ListEach reads the API server's list as a stream, items before metadata,
// hands on every app decoded into the lean type, and follows pages.
func TestListEachStreamsEveryPage(t *testing.T) {
	for _, tc := range []struct {
		desc  string
		opts  metav1.ListOptions
		calls int
	}{
		{"one response", metav1.ListOptions{ResourceVersion: "0"}, 1},
		{"pages", metav1.ListOptions{Limit: 2}, 3},
	} {
		srv := &apiServer{apps: 5, pageSize: 2}
		c := newTestClient(t, srv)
		var names []string
		meta, err := c.Applications("argocd").ListEach(context.Background(), tc.opts, func(a *v1alpha1.Application) error {
			if a.Spec.Project != "p" || a.Status.Resources[0].SyncWave != 2 || a.Status.Resources[0].Status != v1alpha1.SyncStatusCodeSynced || a.UID == "" {
				t.Errorf("%s: decoded %+v", tc.desc, a)
			}
			names = append(names, a.Name)
			return nil
		})
		if err != nil {
			t.Fatalf("%s: %v", tc.desc, err)
		}
		if strings.Join(names, ",") != "app-0,app-1,app-2,app-3,app-4" || meta.ResourceVersion != "42" || meta.Continue != "" {
			t.Errorf("%s: apps %v, metadata %+v", tc.desc, names, meta)
		}
		if len(srv.queries) != tc.calls {
			t.Errorf("%s: %d requests %v, want %d", tc.desc, len(srv.queries), srv.queries, tc.calls)
		}
		if srv.gzip != 0 {
			t.Errorf("%s: %d list requests asked for gzip; lists are read uncompressed (UncompressedLists)", tc.desc, srv.gzip)
		}
	}
}

// List and ListEach decode the same apps; an error answer is an API error.
func TestListAndErrors(t *testing.T) {
	c := newTestClient(t, &apiServer{apps: 3, pageSize: 10})
	l, err := c.Applications("argocd").List(context.Background(), metav1.ListOptions{})
	if err != nil || len(l.Items) != 3 || l.Items[2].Name != "app-2" || l.ResourceVersion != "42" {
		t.Fatalf("List = %+v, %v", l, err)
	}
	if _, err := c.Applications("other").List(context.Background(), metav1.ListOptions{}); err == nil || !strings.Contains(err.Error(), "could not find") {
		t.Errorf("List of a missing resource: %v, want the server's NotFound", err)
	}
	_, err = c.Applications("other").ListEach(context.Background(), metav1.ListOptions{}, func(*v1alpha1.Application) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "could not find") {
		t.Errorf("ListEach of a missing resource: %v, want the server's NotFound", err)
	}
}

// A malformed list fails with an error, never a panic.
func TestDecodeListRejectsMalformed(t *testing.T) {
	for _, body := range []string{``, `[]`, `{"items":{}}`, `{"items":[{"metadata":1}]}`, `{"items":[`, `{"metadata":{"continue":5}}`} {
		_, err := decodeList(strings.NewReader(body), func(dec *json.Decoder) error {
			var a v1alpha1.Application
			return dec.Decode(&a)
		})
		if err == nil {
			t.Errorf("decodeList(%q) = nil error", body)
		}
	}
}
