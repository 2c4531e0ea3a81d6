package clusters

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const secretToken = "eyJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu.signature"

// selfSigned returns a PEM certificate and its PEM key.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "crowsnest"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
}

// mount writes a Secret's keys under dir/name as the kubelet mounts a
// Secret volume: the files are symlinks into a hidden ..data directory.
func mount(t *testing.T, dir, name string, keys map[string]string) {
	t.Helper()
	sub := filepath.Join(dir, name)
	data := filepath.Join(sub, "..2026_12_07_20_00_00.000000001")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(data), filepath.Join(sub, "..data")); err != nil {
		t.Fatal(err)
	}
	for k, v := range keys {
		if err := os.WriteFile(filepath.Join(data, k), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", k), filepath.Join(sub, k)); err != nil {
			t.Fatal(err)
		}
	}
}

func configJSON(t *testing.T, v map[string]any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestLoadClusters(t *testing.T) {
	cert, key := selfSigned(t)
	dir := t.TempDir()
	mount(t, dir, "prod-eu", map[string]string{"name": "prod-eu", "server": "https://prod-eu.example.com:6443/",
		"config": configJSON(t, map[string]any{"bearerToken": secretToken, "tlsClientConfig": map[string]any{"caData": cert, "serverName": "kubernetes"}})})
	mount(t, dir, "prod-us", map[string]string{"server": "https://prod-us.example.com",
		"config": configJSON(t, map[string]any{"tlsClientConfig": map[string]any{"certData": cert, "keyData": key, "insecure": true}})})
	mount(t, dir, "eks", map[string]string{"name": "eks", "server": "https://eks.example.com",
		"config": configJSON(t, map[string]any{"awsAuthConfig": map[string]any{"clusterName": "eks"}, "tlsClientConfig": map[string]any{}})})
	got, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d clusters, want 3: %+v", len(got), got)
	}
	eks, eu, us := got[0], got[1], got[2]
	if eu.Name != "prod-eu" || eu.Server != "https://prod-eu.example.com:6443" || eu.Auth != "bearer" || eu.Unsupported != "" {
		t.Errorf("prod-eu: %+v", eu)
	}
	// The token is not in the configuration: a transport reads it from
	// the mounted file (token.go), so it may rotate.
	if rc := eu.RESTConfig(); rc == nil || rc.BearerToken != "" || rc.WrapTransport == nil || rc.ServerName != "kubernetes" || len(rc.CAData) == 0 || rc.Host != eu.Server {
		t.Errorf("prod-eu's client configuration: %+v", rc)
	}
	if us.Name != "https://prod-us.example.com" || us.Auth != "client-cert" || !us.RESTConfig().Insecure {
		t.Errorf("prod-us (no name: its server): %+v", us)
	}
	if eks.Unsupported == "" || !strings.Contains(eks.Unsupported, "awsAuthConfig") || eks.RESTConfig() != nil {
		t.Errorf("eks: %+v, want not watched, saying why", eks)
	}
}

// Every error names the file and the field, and none holds a value of the
// Secret: the token, the key, the config's text.
func TestLoadErrorsNameTheFieldNotTheValue(t *testing.T) {
	cert, key := selfSigned(t)
	for _, tc := range []struct {
		desc string
		keys map[string]string
		want string
	}{
		{"no server", map[string]string{"config": "{}"}, "/server: missing"},
		{"a server with credentials", map[string]string{"server": "https://admin:" + secretToken + "@k.example.com", "config": "{}"}, "/server: want an http(s) URL without user information"},
		{"no config", map[string]string{"server": "https://k.example.com"}, "/config: missing"},
		{"config not JSON", map[string]string{"server": "https://k.example.com", "config": "{\n\"bearerToken\": " + secretToken + "\n}"}, "/config: line 2: not valid JSON"},
		{"a field of the wrong type", map[string]string{"server": "https://k.example.com", "config": `{"bearerToken": 42}`}, "/config: field bearerToken: want string, got JSON number"},
		{"caData not base64", map[string]string{"server": "https://k.example.com", "config": `{"tlsClientConfig": {"caData": "` + secretToken + `"}}`}, "/config: field tlsClientConfig.caData: want base64 of PEM, got JSON string"},
		{"caData not PEM", map[string]string{"server": "https://k.example.com", "config": configJSON(t, map[string]any{"tlsClientConfig": map[string]any{"caData": []byte(secretToken)}})}, "field tlsClientConfig.caData: no PEM certificate"},
		{"a key without its certificate", map[string]string{"server": "https://k.example.com", "config": configJSON(t, map[string]any{"tlsClientConfig": map[string]any{"keyData": key}})}, "fields tlsClientConfig.certData and keyData"},
		{"another certificate's key", map[string]string{"server": "https://k.example.com", "config": configJSON(t, map[string]any{"tlsClientConfig": map[string]any{"certData": cert, "keyData": []byte(strings.Replace(string(key), "A", "B", 5))}})}, "fields tlsClientConfig.certData and keyData"},
	} {
		dir := t.TempDir()
		mount(t, dir, "spoke", tc.keys)
		_, err := Load(dir)
		if err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "spoke")+tc.want) && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.desc, err, tc.want)
			continue
		}
		if !strings.Contains(err.Error(), filepath.Join(dir, "spoke")) {
			t.Errorf("%s: %v does not name the Secret's directory", tc.desc, err)
		}
		for _, secret := range []string{secretToken, "c2VjcmV0LXRva2Vu", string(key[30:60])} {
			if strings.Contains(err.Error(), secret) {
				t.Errorf("%s: the error %q holds a credential", tc.desc, err)
			}
		}
	}
}

// Argo CD's destinations name a cluster by server or name: two Secrets
// with one of them cannot both be watched.
func TestLoadRefusesTwoClustersOfOneServerOrName(t *testing.T) {
	cfg := `{"bearerToken": "t"}`
	dir := t.TempDir()
	mount(t, dir, "a", map[string]string{"name": "prod", "server": "https://a.example.com", "config": cfg})
	mount(t, dir, "b", map[string]string{"name": "prod", "server": "https://b.example.com", "config": cfg})
	mount(t, dir, "c", map[string]string{"name": "c", "server": "https://a.example.com", "config": cfg})
	got, err := Load(dir)
	if err == nil || !strings.Contains(err.Error(), `"prod" is also the name`) || !strings.Contains(err.Error(), "https://a.example.com is also the server") {
		t.Errorf("err %v", err)
	}
	if len(got) != 1 || got[0].Name != "prod" {
		t.Errorf("kept %+v, want the first", got)
	}
}
