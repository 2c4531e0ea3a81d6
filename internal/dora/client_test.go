package dora

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/argocd/api"
	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/model"
)

// query is one revision metadata request a fakeArgoCD received.
type query struct {
	what                         string // metadata or ocimetadata
	name, revision, appNamespace string
	sourceIndex, versionID       string // "" when absent
}

// fakeArgoCD is argocd-server's REST API (its grpc-gateway), as far as
// commit metadata goes, over real HTTP.
type fakeArgoCD struct {
	mu       sync.Mutex
	queries  []query
	tokens   []string
	revision map[string]*v1alpha1.RevisionMetadata // by revision
	oci      map[string]*v1alpha1.OCIMetadata
}

// ServeHTTP answers GET /api/v1/applications/{name}/revisions/{revision}/{metadata,ocimetadata}.
func (f *fakeArgoCD) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := query{what: r.PathValue("what"), name: r.PathValue("name"), revision: r.PathValue("revision"),
		appNamespace: r.URL.Query().Get("appNamespace"), sourceIndex: r.URL.Query().Get("sourceIndex"), versionID: r.URL.Query().Get("versionId")}
	f.mu.Lock()
	f.queries = append(f.queries, q)
	f.tokens = append(f.tokens, strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "))
	var md any
	var ok bool
	switch q.what {
	case "metadata":
		md, ok = f.revision[q.revision]
	case "ocimetadata":
		md, ok = f.oci[q.revision]
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		msg := "revision " + q.revision + " not found"
		_ = json.NewEncoder(w).Encode(map[string]any{"error": msg, "code": 5, "message": msg})
		return
	}
	_ = json.NewEncoder(w).Encode(md)
}

func (f *fakeArgoCD) handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /api/v1/applications/{name}/revisions/{revision}/{what}", f)
	return mux
}

func (f *fakeArgoCD) last() (query, string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries[len(f.queries)-1], f.tokens[len(f.tokens)-1], len(f.queries)
}

// serveArgoCD serves f on a local port, in plain text, and returns a client
// for it, with the token in a file.
func serveArgoCD(t *testing.T, f *fakeArgoCD) (*ArgoCDClient, string) {
	t.Helper()
	srv := httptest.NewServer(f.handler())
	t.Cleanup(srv.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := NewArgoCDClient(api.Config{Address: srv.Listener.Addr().String(), TokenFile: tokenFile, PlainText: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	})
	return c, tokenFile
}

func callCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestArgoCDClientRevisionMetadata(t *testing.T) {
	authored := time.Date(2026, 2, 1, 9, 30, 0, 0, time.UTC)
	f := &fakeArgoCD{revision: map[string]*v1alpha1.RevisionMetadata{
		"1111111": {
			Author: "Ann <ann@example.com>", Date: &metav1.Time{Time: authored},
			Message: "Bump cart to v2\n\nLonger body.",
		},
		"2222222": {
			Author: "Config Bot <bot@example.com>", Date: &metav1.Time{Time: authored.Add(time.Hour)},
			Message: "Hydrate\n\nArgocd-reference-commit-sha: abcdef0",
			References: []v1alpha1.RevisionReference{{Commit: &v1alpha1.CommitMetadata{
				Author: "Bob <bob@example.com>", Date: "2026-01-31T08:00:00+01:00", Subject: "Speed up checkout",
				SHA: "abcdef0", RepoURL: "https://git.example.com/code.git",
			}}},
		},
		"3333333": { // a reference without a date: the revision's own commit
			Author: "Cy", Date: &metav1.Time{Time: authored},
			Message:    "Config",
			References: []v1alpha1.RevisionReference{{Commit: &v1alpha1.CommitMetadata{SHA: "fff", Subject: "no date"}}},
		},
	}}
	c, tokenFile := serveArgoCD(t, f)
	repo := "https://git.example.com/config.git"

	got, err := c.Commit(callCtx(t), "argocd", "cart", model.DeploymentSource{RepoURL: repo, Revision: "1111111"})
	if err != nil {
		t.Fatal(err)
	}
	want := model.Commit{SHA: "1111111", RepoURL: repo, Author: "Ann <ann@example.com>", Date: authored, Subject: "Bump cart to v2"}
	if !got.Date.Equal(want.Date) {
		t.Errorf("date = %v, want %v", got.Date, want.Date)
	}
	got.Date = want.Date
	if *got != want {
		t.Errorf("commit = %+v, want %+v", *got, want)
	}
	q, token, _ := f.last()
	if q.what != "metadata" || q.name != "cart" || q.appNamespace != "argocd" || q.revision != "1111111" || q.sourceIndex != "" || q.versionID != "" {
		t.Errorf("query = %v, want cart in argocd at 1111111 without source index", q)
	}
	if token != "token-1" {
		t.Errorf("token = %q, want the token file's", token)
	}

	// A multi-source app's second source, whose revision references the
	// code commit.
	got, err = c.Commit(callCtx(t), "team", "shop", model.DeploymentSource{Index: 1, RepoURL: repo, Revision: "2222222"})
	if err != nil {
		t.Fatal(err)
	}
	wantDate := time.Date(2026, 1, 31, 7, 0, 0, 0, time.UTC)
	if !got.Referenced || got.SHA != "abcdef0" || got.RepoURL != "https://git.example.com/code.git" ||
		got.Author != "Bob <bob@example.com>" || got.Subject != "Speed up checkout" || !got.Date.Equal(wantDate) {
		t.Errorf("referenced commit = %+v, want Bob's abcdef0 of %v", got, wantDate)
	}
	if q, _, _ := f.last(); q.sourceIndex != "1" || q.appNamespace != "team" {
		t.Errorf("query = %v, want source index 1 in team", q)
	}

	got, err = c.Commit(callCtx(t), "argocd", "cart", model.DeploymentSource{RepoURL: repo, Revision: "3333333"})
	if err != nil || got.Referenced || got.SHA != "3333333" || got.Author != "Cy" {
		t.Errorf("undated reference: commit = %+v, %v; want the revision's own", got, err)
	}

	// An error names what was asked; the token file is read at every call.
	if err := os.WriteFile(tokenFile, []byte("token-2"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = c.Commit(callCtx(t), "argocd", "cart", model.DeploymentSource{RepoURL: repo, Revision: "9999999"})
	var apiErr *api.Error
	if !errors.As(err, &apiErr) || apiErr.Code != 5 || apiErr.HTTPStatus != http.StatusNotFound || !strings.Contains(err.Error(), "commit metadata of "+repo+" at 9999999 (app argocd/cart)") {
		t.Errorf("err = %v, want NotFound wrapped with the repo, revision and app", err)
	}
	if isUnsupported(err) {
		t.Error("a failed fetch says unsupported")
	}
	if _, token, n := f.last(); token != "token-2" || n != 4 {
		t.Errorf("call %d had token %q, want call 4 with the rotated token-2", n, token)
	}
}

func TestArgoCDClientOCIAndHelm(t *testing.T) {
	f := &fakeArgoCD{oci: map[string]*v1alpha1.OCIMetadata{
		"sha256:aaa": {CreatedAt: "2026-02-01T10:00:00Z", Authors: "Platform", Description: "cart manifests"},
		"sha256:bbb": {Authors: "Platform"},
	}}
	c, _ := serveArgoCD(t, f)
	oci := "oci://registry.example.com/cart"

	got, err := c.Commit(callCtx(t), "argocd", "cart", model.DeploymentSource{RepoURL: oci, Revision: "sha256:aaa"})
	if err != nil {
		t.Fatal(err)
	}
	if got.SHA != "sha256:aaa" || got.RepoURL != oci || got.Author != "Platform" || got.Subject != "cart manifests" ||
		!got.Date.Equal(time.Date(2026, 2, 1, 10, 0, 0, 0, time.UTC)) || got.Referenced {
		t.Errorf("oci commit = %+v", got)
	}
	if q, _, _ := f.last(); q.what != "ocimetadata" || q.revision != "sha256:aaa" || q.name != "cart" {
		t.Errorf("query = %v", q)
	}

	if _, err := c.Commit(callCtx(t), "argocd", "cart", model.DeploymentSource{RepoURL: oci, Revision: "sha256:bbb"}); !isUnsupported(err) {
		t.Errorf("undated artifact: err = %v, want unsupported", err)
	}
	_, _, before := f.last()
	if _, err := c.Commit(callCtx(t), "argocd", "redis", model.DeploymentSource{RepoURL: oci, Chart: "redis", Revision: "1.0.0"}); !isUnsupported(err) {
		t.Errorf("helm chart: err = %v, want unsupported", err)
	}
	if _, _, after := f.last(); after != before {
		t.Error("argocd-server was asked about a helm chart")
	}
}

func TestArgoCDClientTLS(t *testing.T) {
	certPEM, cert := selfSigned(t)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	f := &fakeArgoCD{revision: map[string]*v1alpha1.RevisionMetadata{"1111111": {Author: "Ann", Date: &metav1.Time{Time: t0}}}}
	srv := httptest.NewUnstartedServer(f.handler())
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	src := model.DeploymentSource{RepoURL: "https://git.example.com/x.git", Revision: "1111111"}

	for _, tc := range []struct {
		desc string
		cfg  api.Config
		ok   bool
	}{
		{"verified with the CA file", api.Config{CAFile: caFile}, true},
		{"unverified without it", api.Config{}, false},
		{"not verified with insecure", api.Config{Insecure: true}, true},
	} {
		tc.cfg.Address, tc.cfg.Token = srv.Listener.Addr().String(), "secret"
		c, err := NewArgoCDClient(tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Commit(callCtx(t), "argocd", "cart", src)
		if tc.ok && (err != nil || got.Author != "Ann") || !tc.ok && err == nil {
			t.Errorf("%s: commit %+v, err %v", tc.desc, got, err)
		}
		if tc.ok {
			if _, token, _ := f.last(); token != "secret" {
				t.Errorf("%s: token %q, want secret", tc.desc, token)
			}
		}
		if err := c.Close(); err != nil {
			t.Error(err)
		}
	}
}

// selfSigned returns a self-signed certificate for 127.0.0.1, as PEM and
// as a TLS certificate.
func selfSigned(t *testing.T) ([]byte, tls.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "argocd-server"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func TestArgoCDClientBoundedByContext(t *testing.T) {
	// A listener that never accepts: the TLS handshake never ends.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	c, err := NewArgoCDClient(api.Config{Address: l.Addr().String(), Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Commit(ctx, "argocd", "cart", model.DeploymentSource{RepoURL: "https://git.example.com/x.git", Revision: "1111111"})
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("Commit against a mute server = %v after %v, want DeadlineExceeded at the timeout", err, time.Since(start))
	}
}

func TestNewArgoCDClientChecksTokenFile(t *testing.T) {
	_, err := NewArgoCDClient(api.Config{Address: "localhost:1", TokenFile: filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.Contains(err.Error(), "--argocd.token-file") {
		t.Errorf("err = %v, want the token file's error", err)
	}
}
