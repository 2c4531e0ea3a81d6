// Package clusters reads the destination clusters crowsnest watches
// workloads in besides its own (hub and spoke): Argo CD cluster Secrets
// (https://argo-cd.readthedocs.io/en/stable/operator-manual/declarative-setup/#clusters)
// mounted as files, one directory per Secret holding its keys name, server
// and config. They are crowsnest's own Secrets, with credentials that read
// only the workload kinds it watches: crowsnest reads no Secret through the
// API, and Argo CD's own cluster Secrets (cluster-admin on every spoke) are
// not needed.
//
// No credential reaches an error or a log line: errors name the file and
// the field, never a value.
package clusters

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
)

// Cluster is one destination cluster, by the name and server URL Argo CD's
// destinations give it.
type Cluster struct {
	Name, Server string
	// Dir is the directory it was read from, for messages.
	Dir string
	// Auth is how crowsnest authenticates to it: bearer, client-cert,
	// basic or none; a kind crowsnest does not support (aws, exec) is
	// in Unsupported instead.
	Auth string
	// Unsupported says why the cluster is not watched; empty when it is.
	Unsupported string
	config      *rest.Config
}

// RESTConfig returns a copy of the client configuration; nil when the
// cluster is not watched.
func (c *Cluster) RESTConfig() *rest.Config {
	if c.config == nil {
		return nil
	}
	return rest.CopyConfig(c.config)
}

// clusterConfig is the config key of an Argo CD cluster Secret: Argo CD's
// v1alpha1.ClusterConfig, the fields crowsnest reads.
type clusterConfig struct {
	Username           string          `json:"username"`
	Password           string          `json:"password"`
	BearerToken        string          `json:"bearerToken"`
	TLSClientConfig    tlsClientConfig `json:"tlsClientConfig"`
	AWSAuthConfig      json.RawMessage `json:"awsAuthConfig"`
	ExecProviderConfig json.RawMessage `json:"execProviderConfig"`
	ProxyURL           string          `json:"proxyUrl"`
	DisableCompression bool            `json:"disableCompression"`
}

type tlsClientConfig struct {
	Insecure   bool   `json:"insecure"`
	ServerName string `json:"serverName"`
	CertData   []byte `json:"certData"`
	KeyData    []byte `json:"keyData"`
	CAData     []byte `json:"caData"`
}

// Load reads every subdirectory of dir as a cluster Secret, sorted by
// directory name. Every error names its file and field; a cluster with an
// authentication crowsnest does not support is returned with Unsupported
// set, not as an error. Two clusters with one server or one name are an
// error: Argo CD's destinations could not tell them apart.
func Load(dir string) ([]Cluster, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("clusters: %w", err)
	}
	var out []Cluster
	var errs []error
	servers, names := map[string]string{}, map[string]string{}
	for _, e := range entries {
		// A mounted Secret's directory holds ..data symlinks; its keys are
		// links too.
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		sub := filepath.Join(dir, e.Name())
		if fi, err := os.Stat(sub); err != nil || !fi.IsDir() {
			continue
		}
		c, err := Read(sub)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if other, ok := servers[c.Server]; ok {
			errs = append(errs, fmt.Errorf("clusters: %s/server: %s is also the server of %s", sub, c.Server, other))
			continue
		}
		if other, ok := names[c.Name]; ok {
			errs = append(errs, fmt.Errorf("clusters: %s/name: %q is also the name of %s", sub, c.Name, other))
			continue
		}
		servers[c.Server], names[c.Name] = sub, sub
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Dir < out[j].Dir })
	return out, errors.Join(errs...)
}

// Read reads one cluster Secret's keys from dir: server (required), name
// (default: the server) and config (required, JSON).
func Read(dir string) (Cluster, error) {
	key := func(k string) (string, bool, error) {
		b, err := os.ReadFile(filepath.Join(dir, k))
		if errors.Is(err, os.ErrNotExist) {
			return "", false, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("clusters: %w", err)
		}
		return strings.TrimSpace(string(b)), true, nil
	}
	server, ok, err := key("server")
	if err != nil {
		return Cluster{}, err
	}
	if !ok || server == "" {
		return Cluster{}, fmt.Errorf("clusters: %s/server: missing, want the cluster's API server URL", dir)
	}
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.User != nil {
		return Cluster{}, fmt.Errorf("clusters: %s/server: want an http(s) URL without user information", dir)
	}
	name, _, err := key("name")
	if err != nil {
		return Cluster{}, err
	}
	if name == "" {
		name = server
	}
	raw, ok, err := key("config")
	if err != nil {
		return Cluster{}, err
	}
	if !ok {
		return Cluster{}, fmt.Errorf("clusters: %s/config: missing, want Argo CD's cluster config JSON", dir)
	}
	c := Cluster{Name: name, Server: strings.TrimRight(server, "/"), Dir: dir}
	cfg, err := parseConfig([]byte(raw))
	if err != nil {
		return Cluster{}, fmt.Errorf("clusters: %s/config: %w", dir, err)
	}
	switch {
	case len(cfg.AWSAuthConfig) > 0 && string(cfg.AWSAuthConfig) != "null":
		c.Unsupported = "awsAuthConfig: EKS IAM authentication is not supported; give a bearer token or a client certificate"
		return c, nil
	case len(cfg.ExecProviderConfig) > 0 && string(cfg.ExecProviderConfig) != "null":
		c.Unsupported = "execProviderConfig: exec plugins are not supported; give a bearer token or a client certificate"
		return c, nil
	}
	rc, auth, err := restConfig(c.Server, cfg)
	if err != nil {
		return Cluster{}, fmt.Errorf("clusters: %s/config: %w", dir, err)
	}
	if auth == "bearer" {
		// The token is read again from the mounted file as it rotates.
		src := newBearerSource(filepath.Join(dir, "config"), rc.BearerToken, TokenRefresh)
		rc.BearerToken = ""
		rc.WrapTransport = transport.TokenSourceWrapTransport(src)
	}
	c.config, c.Auth = rc, auth
	return c, nil
}

// parseConfig decodes the config JSON; a syntax error says where, not
// what (the text is a credential).
func parseConfig(raw []byte) (clusterConfig, error) {
	var cfg clusterConfig
	err := json.Unmarshal(raw, &cfg)
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		line := 1 + bytes.Count(raw[:min(int(syntax.Offset), len(raw))], []byte("\n"))
		return cfg, fmt.Errorf("line %d: not valid JSON", line)
	case errors.As(err, &typ):
		want := typ.Type.String()
		if want == "[]uint8" {
			want = "base64 of PEM"
		}
		return cfg, fmt.Errorf("field %s: want %s, got JSON %s", typ.Field, want, typ.Value)
	case err != nil:
		// encoding/base64's errors for caData, certData and keyData say
		// which byte, never the data.
		return cfg, fmt.Errorf("not Argo CD's cluster config: %w", err)
	}
	return cfg, nil
}

// restConfig builds the client configuration for server from cfg, and
// names the authentication it uses.
func restConfig(server string, cfg clusterConfig) (*rest.Config, string, error) {
	t := cfg.TLSClientConfig
	rc := &rest.Config{
		Host: server,
		TLSClientConfig: rest.TLSClientConfig{
			Insecure: t.Insecure, ServerName: t.ServerName, CAData: t.CAData, CertData: t.CertData, KeyData: t.KeyData,
		},
		BearerToken: cfg.BearerToken, Username: cfg.Username, Password: cfg.Password,
		DisableCompression: cfg.DisableCompression,
	}
	if len(t.CAData) > 0 && !x509.NewCertPool().AppendCertsFromPEM(t.CAData) {
		return nil, "", errors.New("field tlsClientConfig.caData: no PEM certificate in it")
	}
	auth := "none"
	switch {
	case len(t.CertData) > 0 || len(t.KeyData) > 0:
		if _, err := tls.X509KeyPair(t.CertData, t.KeyData); err != nil {
			return nil, "", errors.New("fields tlsClientConfig.certData and keyData: not a PEM certificate and its key")
		}
		auth = "client-cert"
	case cfg.BearerToken != "":
		auth = "bearer"
	case cfg.Username != "" || cfg.Password != "":
		auth = "basic"
	}
	if cfg.ProxyURL != "" {
		u, err := url.Parse(cfg.ProxyURL)
		if err != nil || u.Host == "" {
			return nil, "", errors.New("field proxyUrl: not a URL")
		}
		rc.Proxy = http.ProxyURL(u)
	}
	return rc, auth, nil
}
