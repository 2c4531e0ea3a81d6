package deploy

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/argoproj/argo-cd/v3/pkg/apiclient"
	applicationpkg "github.com/argoproj/argo-cd/v3/pkg/apiclient/application"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/crowsnest/crowsnest/internal/collect/source"
)

// Why not pkg/apiclient's NewClient for gRPC: it probes the server at
// once (a Version call, to fall back to gRPC-web), and when the probe runs
// out of time it retries with a function that calls log.Fatalf when it
// cannot connect, which would end crowsnest; and its connections dial one
// net.Conn and hand gRPC only that one, so they never reconnect. A plain
// gRPC connection speaks the same protocol (the ApplicationService client
// and the "token" metadata of pkg/apiclient) and reconnects by itself.
// pkg/apiclient still serves gRPC-web, where it does not probe.

// grpcConn is a gRPC connection to argocd-server: lazy (grpc.NewClient
// connects at the first call), reconnecting by itself, with the token read
// again for every call.
func grpcConn(cfg source.ArgoCDAPIConfig) (*grpc.ClientConn, error) {
	creds := insecure.NewCredentials()
	if !cfg.PlainText {
		tc := &tls.Config{InsecureSkipVerify: cfg.Insecure}
		if cfg.CAFile != "" {
			pem, err := os.ReadFile(cfg.CAFile)
			if err != nil {
				return nil, fmt.Errorf("argo cd api CA file: %w", err)
			}
			pool, _ := x509.SystemCertPool()
			if pool == nil {
				pool = x509.NewCertPool()
			}
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("argo cd api CA file %s: no PEM certificate", cfg.CAFile)
			}
			tc.RootCAs = pool
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(serverAddress(cfg.Address),
		grpc.WithTransportCredentials(creds),
		grpc.WithPerRPCCredentials(tokenCredentials{token: cfg.Token, file: cfg.TokenFile}),
		grpc.WithUserAgent("crowsnest"))
	if err != nil {
		return nil, fmt.Errorf("argo cd api client for %s: %w", cfg.Address, err)
	}
	return conn, nil
}

// serverAddress is address with Argo CD's default port, 443, when it has
// none, as pkg/apiclient does.
func serverAddress(address string) string {
	if !strings.Contains(address, ":") {
		return address + ":443"
	}
	return address
}

// tokenCredentials send the token as pkg/apiclient does, read from the
// file at every call when there is one: a rotated token is picked up at
// once.
type tokenCredentials struct{ token, file string }

// GetRequestMetadata implements credentials.PerRPCCredentials.
func (t tokenCredentials) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	token, err := t.get()
	if err != nil {
		return nil, err
	}
	return map[string]string{apiclient.MetaDataTokenKey: token}, nil
}

// RequireTransportSecurity implements credentials.PerRPCCredentials: the
// token goes in plain text too, as with pkg/apiclient (--argocd.plaintext
// inside a cluster).
func (tokenCredentials) RequireTransportSecurity() bool { return false }

// get returns the token. Errors name the file, never its content.
func (t tokenCredentials) get() (string, error) {
	if t.file == "" {
		return t.token, nil
	}
	b, err := os.ReadFile(t.file)
	if err != nil {
		return "", fmt.Errorf("--argocd.token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("--argocd.token-file: %s is empty", t.file)
	}
	return token, nil
}

// grpcWebConn connects through pkg/apiclient over gRPC-web (HTTP/1.1,
// through proxies without HTTP/2), with the token read now; ctx bounds
// the dial.
func grpcWebConn(ctx context.Context, cfg source.ArgoCDAPIConfig) (io.Closer, applicationpkg.ApplicationServiceClient, error) {
	token, err := tokenCredentials{token: cfg.Token, file: cfg.TokenFile}.get()
	if err != nil {
		return nil, nil, err
	}
	client, err := apiclient.NewClientWithContext(ctx, &apiclient.ClientOptions{
		ServerAddr: cfg.Address, AuthToken: token, PlainText: cfg.PlainText, Insecure: cfg.Insecure,
		GRPCWeb: true, CertFile: cfg.CAFile, UserAgent: "crowsnest",
	})
	if err != nil {
		return nil, nil, fmt.Errorf("argo cd api client for %s: %w", cfg.Address, err)
	}
	closer, apps, err := client.NewApplicationClientWithContext(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("connect to %s: %w", cfg.Address, err)
	}
	return closer, apps, nil
}
