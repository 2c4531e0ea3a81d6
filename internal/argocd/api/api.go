// Package api is a client of argocd-server's REST API (the grpc-gateway
// in front of its gRPC services, on the same port, which Argo CD's UI
// uses): the Application list and watch stream and the revision metadata
// crowsnest reads.
//
// Why REST and not pkg/apiclient: pkg/apiclient brings Argo CD's type
// package and everything it imports (see internal/argocd/v1alpha1) plus
// gRPC's, for four calls; its NewClient probes the server and can call
// log.Fatalf when the probe fails; and its gRPC-web connections never
// reconnect. The REST API serves the same messages as JSON, through any
// HTTP/1.1 proxy or ingress (where gRPC needs HTTP/2 end to end), with the
// token as a bearer token, and a plain net/http client reconnects by itself.
package api

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
)

// Config is how to reach argocd-server.
type Config struct {
	// Address is host[:port]; the port defaults to 443, as the argocd CLI's.
	Address string
	// Token is the bearer token; TokenFile, when set, is read again at
	// every request instead, so a rotated token is picked up at once.
	Token, TokenFile string
	// CAFile holds PEM certificates to verify the server with, beside the
	// system's.
	CAFile string
	// PlainText talks HTTP without TLS; Insecure skips verifying the
	// server's certificate.
	PlainText, Insecure bool
	// UserAgent names the client; "crowsnest" if empty.
	UserAgent string
}

// Client calls argocd-server's REST API. It is safe for concurrent use.
type Client struct {
	base      string // scheme://host:port
	http      *http.Client
	token     string
	tokenFile string
	userAgent string
}

// New returns a client for cfg. It reads the CA file and checks the token
// (file) but does not connect.
func New(cfg Config) (*Client, error) {
	if cfg.Address == "" {
		return nil, errors.New("no argo cd api server address")
	}
	c := &Client{token: cfg.Token, tokenFile: cfg.TokenFile, userAgent: cfg.UserAgent}
	if c.userAgent == "" {
		c.userAgent = "crowsnest"
	}
	if _, err := c.bearer(); err != nil {
		return nil, err
	}
	addr := cfg.Address
	if !strings.Contains(addr, ":") {
		addr += ":443"
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	if cfg.PlainText {
		c.base = "http://" + addr
	} else {
		c.base = "https://" + addr
		tc := &tls.Config{InsecureSkipVerify: cfg.Insecure} //nolint:gosec // the user's choice (--argocd.insecure)
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
		transport.TLSClientConfig = tc
	}
	if _, err := url.Parse(c.base); err != nil {
		return nil, fmt.Errorf("argo cd api server address %q: %w", cfg.Address, err)
	}
	c.http = &http.Client{Transport: transport}
	return c, nil
}

// Close releases the client's idle connections.
func (c *Client) Close() { c.http.CloseIdleConnections() }

// bearer returns the token, read from the token file when there is one.
// Its errors name the file, never its content.
func (c *Client) bearer() (string, error) {
	if c.tokenFile == "" {
		if c.token == "" {
			return "", errors.New("no argo cd api token")
		}
		return c.token, nil
	}
	b, err := os.ReadFile(c.tokenFile)
	if err != nil {
		return "", fmt.Errorf("--argocd.token-file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if token == "" {
		return "", fmt.Errorf("--argocd.token-file: %s is empty", c.tokenFile)
	}
	return token, nil
}

// Error is an error answer of the server: its HTTP status and the gRPC
// status grpc-gateway puts in the body.
type Error struct {
	// HTTPStatus is the response's status code.
	HTTPStatus int
	// Code is the gRPC status code (16 Unauthenticated, 7 PermissionDenied,
	// 5 NotFound, 12 Unimplemented...), 0 if the body had none.
	Code int
	// Message is the server's message.
	Message string
}

func (e *Error) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("argo cd api: HTTP %d", e.HTTPStatus)
	}
	return fmt.Sprintf("argo cd api: HTTP %d: %s", e.HTTPStatus, e.Message)
}

// get sends a GET of path with query and returns the response, or an
// *Error for a status other than 200.
func (c *Client) get(ctx context.Context, path string, query url.Values) (*http.Response, error) {
	token, err := c.bearer()
	if err != nil {
		return nil, err
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("argo cd api request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("argo cd api: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, readError(resp)
	}
	return resp, nil
}

// readError reads grpc-gateway's error body ({"error", "code",
// "message"}), as much of it as is JSON.
func readError(resp *http.Response) error {
	e := &Error{HTTPStatus: resp.StatusCode}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var b struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
		Error   string `json:"error"`
	}
	if json.Unmarshal(body, &b) == nil {
		e.Code, e.Message = b.Code, b.Message
		if e.Message == "" {
			e.Message = b.Error
		}
	} else {
		e.Message = strings.TrimSpace(string(bytes.ToValidUTF8(body, []byte("?"))))
		if len(e.Message) > 200 {
			e.Message = e.Message[:200]
		}
	}
	return e
}

// getJSON decodes the answer to a GET into out.
func (c *Client) getJSON(ctx context.Context, path string, query url.Values, out any) error {
	resp, err := c.get(ctx, path, query)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("argo cd api %s: decode: %w", path, err)
	}
	return nil
}

// List returns the Applications of namespace ("" for every namespace the
// token sees): GET /api/v1/applications.
func (c *Client) List(ctx context.Context, namespace string) ([]v1alpha1.Application, error) {
	q := url.Values{}
	if namespace != "" {
		q.Set("appNamespace", namespace)
	}
	var list v1alpha1.ApplicationList
	if err := c.getJSON(ctx, "/api/v1/applications", q, &list); err != nil {
		return nil, fmt.Errorf("list applications: %w", err)
	}
	return list.Items, nil
}

// Cluster is a destination cluster Argo CD knows, by its name and server
// URL (its cluster Secret, or the in-cluster one Argo CD adds itself).
type Cluster struct {
	Name   string `json:"name"`
	Server string `json:"server"`
}

// Clusters returns the clusters Argo CD deploys to, GET /api/v1/clusters
// (RBAC: clusters, get; role:readonly has it). Only names and servers are
// decoded: argocd-server redacts the credentials, and crowsnest keeps
// nothing else of them.
func (c *Client) Clusters(ctx context.Context) ([]Cluster, error) {
	var list struct {
		Items []Cluster `json:"items"`
	}
	if err := c.getJSON(ctx, "/api/v1/clusters", nil, &list); err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	return list.Items, nil
}

// Stream is an open watch stream of Applications.
type Stream struct {
	body io.ReadCloser
	r    *bufio.Reader
}

// Watch opens the Application watch stream, GET
// /api/v1/stream/applications, from resourceVersion ("0": every change
// from now on, without the ADDED event of every app a watch without a
// resource version starts with). Close it when done.
func (c *Client) Watch(ctx context.Context, resourceVersion string) (*Stream, error) {
	q := url.Values{}
	if resourceVersion != "" {
		q.Set("resourceVersion", resourceVersion)
	}
	resp, err := c.get(ctx, "/api/v1/stream/applications", q)
	if err != nil {
		return nil, fmt.Errorf("watch applications: %w", err)
	}
	return &Stream{body: resp.Body, r: bufio.NewReaderSize(resp.Body, 64<<10)}, nil
}

// maxEventBytes bounds one event of the stream (one Application): 64 MiB,
// well above etcd's 1.5 MiB object limit.
const maxEventBytes = 64 << 20

// Recv returns the stream's next event. grpc-gateway writes one JSON
// object per line: {"result": event} or {"error": status}.
func (s *Stream) Recv() (*v1alpha1.ApplicationWatchEvent, error) {
	for {
		line, err := s.readLine()
		if err != nil {
			return nil, err
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var msg struct {
			Result *v1alpha1.ApplicationWatchEvent `json:"result"`
			Error  *struct {
				GRPCCode   int    `json:"grpc_code"`
				HTTPCode   int    `json:"http_code"`
				Code       int    `json:"code"`
				Message    string `json:"message"`
				HTTPStatus string `json:"http_status"`
			} `json:"error"`
		}
		if err := json.Unmarshal(line, &msg); err != nil {
			return nil, fmt.Errorf("watch applications: decode event: %w", err)
		}
		if msg.Error != nil {
			code := msg.Error.GRPCCode
			if code == 0 {
				code = msg.Error.Code
			}
			return nil, fmt.Errorf("watch applications: %w", &Error{HTTPStatus: msg.Error.HTTPCode, Code: code, Message: msg.Error.Message})
		}
		if msg.Result != nil {
			return msg.Result, nil
		}
	}
}

// readLine reads one line of at most maxEventBytes.
func (s *Stream) readLine() ([]byte, error) {
	var buf []byte
	for {
		chunk, err := s.r.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > maxEventBytes {
			return nil, fmt.Errorf("watch applications: an event exceeds %d bytes", maxEventBytes)
		}
		switch {
		case err == nil:
			return buf, nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(bytes.TrimSpace(buf)) > 0:
			return buf, nil
		case errors.Is(err, io.EOF):
			return nil, io.EOF // the server ended the stream
		default:
			return nil, fmt.Errorf("watch applications: %w", err)
		}
	}
}

// Close ends the stream.
func (s *Stream) Close() error { return s.body.Close() }

// RevisionQuery names a revision of one of an app's sources.
type RevisionQuery struct {
	AppNamespace, AppName string
	Revision              string
	// SourceIndex is the source's index in a multi-source app; 0 is sent
	// as absent (the server takes absent for 0, and older servers ignore
	// the field).
	SourceIndex int
}

func (q RevisionQuery) path(what string) string {
	return "/api/v1/applications/" + url.PathEscape(q.AppName) + "/revisions/" + url.PathEscape(q.Revision) + "/" + what
}

func (q RevisionQuery) values() url.Values {
	v := url.Values{}
	if q.AppNamespace != "" {
		v.Set("appNamespace", q.AppNamespace)
	}
	if q.SourceIndex > 0 {
		v.Set("sourceIndex", strconv.Itoa(q.SourceIndex))
	}
	return v
}

// RevisionMetadata returns a git revision's metadata (author, date,
// message, the commits its trailers reference): GET
// /api/v1/applications/{name}/revisions/{revision}/metadata.
func (c *Client) RevisionMetadata(ctx context.Context, q RevisionQuery) (*v1alpha1.RevisionMetadata, error) {
	md := &v1alpha1.RevisionMetadata{}
	if err := c.getJSON(ctx, q.path("metadata"), q.values(), md); err != nil {
		return nil, fmt.Errorf("RevisionMetadata: %w", err)
	}
	return md, nil
}

// OCIMetadata returns an OCI artifact's metadata: GET
// /api/v1/applications/{name}/revisions/{revision}/ocimetadata.
func (c *Client) OCIMetadata(ctx context.Context, q RevisionQuery) (*v1alpha1.OCIMetadata, error) {
	md := &v1alpha1.OCIMetadata{}
	if err := c.getJSON(ctx, q.path("ocimetadata"), q.values(), md); err != nil {
		return nil, fmt.Errorf("GetOCIMetadata: %w", err)
	}
	return md, nil
}
