package deploy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	applicationpkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/application"
	"github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/crowsnest/crowsnest/internal/collect/source"
	"github.com/crowsnest/crowsnest/internal/model"
)

// fakeArgoCD is argocd-server's ApplicationService, as far as commit
// metadata goes, over real gRPC.
type fakeArgoCD struct {
	applicationpkg.UnimplementedApplicationServiceServer

	mu       sync.Mutex
	queries  []*applicationpkg.RevisionMetadataQuery
	tokens   []string
	revision map[string]*v1alpha1.RevisionMetadata // by revision
	oci      map[string]*v1alpha1.OCIMetadata
}

func (f *fakeArgoCD) record(ctx context.Context, q *applicationpkg.RevisionMetadataQuery) {
	md, _ := metadata.FromIncomingContext(ctx)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, q)
	f.tokens = append(f.tokens, strings.Join(md.Get("token"), ","))
}

func (f *fakeArgoCD) RevisionMetadata(ctx context.Context, q *applicationpkg.RevisionMetadataQuery) (*v1alpha1.RevisionMetadata, error) {
	f.record(ctx, q)
	if md, ok := f.revision[q.GetRevision()]; ok {
		return md, nil
	}
	return nil, status.Errorf(codes.NotFound, "revision %s not found", q.GetRevision())
}

func (f *fakeArgoCD) GetOCIMetadata(ctx context.Context, q *applicationpkg.RevisionMetadataQuery) (*v1alpha1.OCIMetadata, error) {
	f.record(ctx, q)
	if md, ok := f.oci[q.GetRevision()]; ok {
		return md, nil
	}
	return nil, status.Errorf(codes.NotFound, "digest %s not found", q.GetRevision())
}

func (f *fakeArgoCD) last() (*applicationpkg.RevisionMetadataQuery, string, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.queries[len(f.queries)-1], f.tokens[len(f.tokens)-1], len(f.queries)
}

// serveArgoCD serves f on a local port, in plain text, and returns a client
// for it, with the token in a file.
func serveArgoCD(t *testing.T, f *fakeArgoCD) (*ArgoCDClient, string) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	applicationpkg.RegisterApplicationServiceServer(srv, f)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("token-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := NewArgoCDClient(source.ArgoCDAPIConfig{Address: l.Addr().String(), TokenFile: tokenFile, PlainText: true})
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
	if q.GetName() != "cart" || q.GetAppNamespace() != "argocd" || q.GetRevision() != "1111111" || q.SourceIndex != nil || q.VersionId != nil {
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
	if q, _, _ := f.last(); q.SourceIndex == nil || *q.SourceIndex != 1 || q.GetAppNamespace() != "team" {
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
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), "commit metadata of "+repo+" at 9999999 (app argocd/cart)") {
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
	if q, _, _ := f.last(); q.GetRevision() != "sha256:aaa" || q.GetName() != "cart" {
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeArgoCD{revision: map[string]*v1alpha1.RevisionMetadata{"1111111": {Author: "Ann", Date: &metav1.Time{Time: t0}}}}
	srv := grpc.NewServer(grpc.Creds(credentials.NewTLS(&tls.Config{Certificates: []tls.Certificate{cert}})))
	applicationpkg.RegisterApplicationServiceServer(srv, f)
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(srv.Stop)
	src := model.DeploymentSource{RepoURL: "https://git.example.com/x.git", Revision: "1111111"}

	for _, tc := range []struct {
		desc string
		cfg  source.ArgoCDAPIConfig
		ok   bool
	}{
		{"verified with the CA file", source.ArgoCDAPIConfig{CAFile: caFile}, true},
		{"unverified without it", source.ArgoCDAPIConfig{}, false},
		{"not verified with insecure", source.ArgoCDAPIConfig{Insecure: true}, true},
	} {
		tc.cfg.Address, tc.cfg.Token = l.Addr().String(), "secret"
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
	c, err := NewArgoCDClient(source.ArgoCDAPIConfig{Address: l.Addr().String(), Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = c.Commit(ctx, "argocd", "cart", model.DeploymentSource{RepoURL: "https://git.example.com/x.git", Revision: "1111111"})
	if status.Code(err) != codes.DeadlineExceeded || time.Since(start) > 5*time.Second {
		t.Errorf("Commit against a mute server = %v after %v, want DeadlineExceeded at the timeout", err, time.Since(start))
	}
}

func TestNewArgoCDClientChecksTokenFile(t *testing.T) {
	_, err := NewArgoCDClient(source.ArgoCDAPIConfig{Address: "localhost:1", TokenFile: filepath.Join(t.TempDir(), "missing")})
	if err == nil || !strings.Contains(err.Error(), "--argocd.token-file") {
		t.Errorf("err = %v, want the token file's error", err)
	}
}
