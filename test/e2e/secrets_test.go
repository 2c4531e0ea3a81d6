//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/crowsnest/crowsnest/internal/lokitest"
)

// Issue 17: no credential appears in any log line, label, recording or
// error message of crowsnest. Every credential the tests configure is
// registered here (Env.Secret, Env.RegisterSecret); every process log,
// every /metrics snapshot of crowsnest (taken when it is stopped) and every
// recording is kept until TestMain has searched them all for every
// registered secret. A secret in one of crowsnest's outputs fails the run;
// one in another program's log (Argo CD's, kube-apiserver's) is reported.
// Findings name the secret and the file and line, never the secret itself.

// secretRegistry is the suite's registry; see the variable secrets.
type secretRegistry struct {
	mu      sync.Mutex
	secrets []secret
	dirs    []*outputDir
	owners  map[string]fileOwner // by path
}

type secret struct{ name, value string }

// fileOwner says who writes a file of a LogDir.
type fileOwner struct {
	program   string
	crowsnest bool // crowsnest writes it (its log, /metrics, recordings)
}

// outputDir is one test's LogDir.
type outputDir struct {
	path, test string
	keep       bool // the test failed, or CROWSNEST_E2E_KEEP is set
}

func newSecretRegistry() *secretRegistry {
	return &secretRegistry{owners: map[string]fileOwner{}}
}

// Register adds a secret to search for; name says what it is (never the
// value) in findings.
func (r *secretRegistry) Register(name, value string) {
	if value == "" {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, s := range r.secrets {
		if s.value == value {
			return
		}
	}
	r.secrets = append(r.secrets, secret{name: name, value: value})
}

// New returns a fresh, distinctive secret, "e2e-secret-PURPOSE-RANDOM",
// registered under purpose. It is URL-safe.
func (r *secretRegistry) New(purpose string) string {
	v := "e2e-secret-" + purpose + "-" + strings.ToLower(rand.Text()[:16])
	r.Register(purpose, v)
	return v
}

// Redact replaces every registered secret in s by its name.
func (r *secretRegistry) Redact(s string) string {
	for _, sec := range r.list() {
		s = strings.ReplaceAll(s, sec.value, "<secret "+sec.name+">")
	}
	return s
}

// list returns the secrets, longest first (so that Redact replaces a
// secret before any shorter one inside it).
func (r *secretRegistry) list() []secret {
	r.mu.Lock()
	out := append([]secret(nil), r.secrets...)
	r.mu.Unlock()
	sort.SliceStable(out, func(i, j int) bool { return len(out[i].value) > len(out[j].value) })
	return out
}

// AddDir registers a test's LogDir: it is searched after the tests.
func (r *secretRegistry) AddDir(path, test string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.dirs = append(r.dirs, &outputDir{path: path, test: test, keep: true})
}

// FinishDir records, at the end of its test, whether a LogDir is to be kept
// after the search (a dir whose test never finished is kept).
func (r *secretRegistry) FinishDir(path string, keep bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.dirs {
		if d.path == path {
			d.keep = keep
		}
	}
}

// AddFile records who writes the file at path; a file of a LogDir that
// nobody registered is held to crowsnest's standard.
func (r *secretRegistry) AddFile(path, program string, crowsnest bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.owners[path] = fileOwner{program: program, crowsnest: crowsnest}
}

func (r *secretRegistry) owner(path string) fileOwner {
	r.mu.Lock()
	defer r.mu.Unlock()
	if o, ok := r.owners[path]; ok {
		return o
	}
	return fileOwner{program: "unknown", crowsnest: true}
}

// finding is one secret on one line of one file.
type finding struct {
	file   string
	line   int
	secret string // its name
	owner  fileOwner
	dir    *outputDir
}

// Check searches every file of every registered LogDir for every registered
// secret, writes what it finds to w (names, files and lines; never a
// secret) and returns how many findings are in crowsnest's outputs.
func (r *secretRegistry) Check(w io.Writer) (leaks int) {
	secs := r.list()
	r.mu.Lock()
	dirs := append([]*outputDir(nil), r.dirs...)
	r.mu.Unlock()
	var findings []finding
	var files, lines, ownFiles, ownLines int
	for _, d := range dirs {
		err := filepath.WalkDir(d.path, func(path string, e fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if !e.Type().IsRegular() {
				return nil
			}
			o := r.owner(path)
			n, err := scanFile(path, secs, func(line int, s secret) {
				findings = append(findings, finding{file: path, line: line, secret: s.name, owner: o, dir: d})
			})
			files, lines = files+1, lines+n
			if o.crowsnest {
				ownFiles, ownLines = ownFiles+1, ownLines+n
			}
			return err
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(w, "e2e: secrets: searching %s: %v\n", d.path, err)
			leaks++ // an output that cannot be searched is not known clean
		}
	}
	for _, f := range findings {
		if f.owner.crowsnest {
			leaks++
			r.mu.Lock()
			f.dir.keep = true
			r.mu.Unlock()
			fmt.Fprintf(w, "e2e: LEAK: secret %q appears in %s:%d (%s, %s)\n", f.secret, f.file, f.line, f.owner.program, f.dir.test)
		} else {
			fmt.Fprintf(w, "e2e: note: secret %q appears in %s:%d (%s's own log, %s; not crowsnest's, not failing)\n", f.secret, f.file, f.line, f.owner.program, f.dir.test)
		}
	}
	fmt.Fprintf(w, "e2e: secrets: searched %d files (%d lines) of %d tests for %d secrets; crowsnest's outputs: %d files (%d lines), %d leaks; other programs' logs: %d findings\n",
		files, lines, len(dirs), len(secs), ownFiles, ownLines, leaks, len(findings)-leaks)
	return leaks
}

// RemoveDirs removes the LogDirs that are not to be kept: those of passing
// tests without leaks, unless keepAll.
func (r *secretRegistry) RemoveDirs(w io.Writer, keepAll bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, d := range r.dirs {
		if keepAll || d.keep {
			fmt.Fprintf(w, "e2e: logs of %s kept in %s\n", d.test, d.path)
			continue
		}
		os.RemoveAll(d.path)
	}
}

// scanFile calls found for every line of path holding a secret, and
// returns the number of lines.
func scanFile(path string, secs []secret, found func(line int, s secret)) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, 1<<20)
	n := 0
	for {
		line, err := br.ReadBytes('\n') // no limit on a line's length
		if len(line) > 0 {
			n++
			for _, s := range secs {
				if bytes.Contains(line, []byte(s.value)) {
					found(n, s)
				}
			}
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}

// Secret returns a fresh, distinctive secret registered under purpose.
func (e *Env) Secret(purpose string) string {
	return secrets.New(purpose)
}

// RegisterSecret registers a credential that something else made (a token
// Argo CD or Kubernetes issued) under name.
func (e *Env) RegisterSecret(name, value string) {
	secrets.Register(name, value)
}

// secretFile writes a registered secret for purpose to a file, as a
// mounted Secret holds it (with a trailing newline), and returns the
// secret and the file's path.
func (e *Env) secretFile(purpose string) (value, path string) {
	e.t.Helper()
	value = e.Secret(purpose)
	path = filepath.Join(e.Dir("secrets"), purpose)
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		e.t.Fatal(err)
	}
	return value, path
}

// withPassword returns rawURL with user information: a fixed user name and
// a registered password for purpose.
func (e *Env) withPassword(rawURL, purpose string) string {
	e.t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		e.t.Fatal(err)
	}
	u.User = url.UserPassword("e2e-user", e.Secret(purpose))
	return u.String()
}

// basicAuth is the Authorization header of user and password, registered
// too: a leak of the header is a leak of the password.
func basicAuth(name, user, password string) string {
	b := base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
	secrets.Register(name, b)
	return "Basic " + b
}

// lokiBasicAuth returns crowsnest's flags for basic auth to Loki, with a
// registered password in a file; at the end of the test it checks that
// every push r received carried them.
func (e *Env) lokiBasicAuth(r *lokitest.Receiver) []string {
	e.t.Helper()
	const user = "e2e-loki-user"
	password, file := e.secretFile("loki-password")
	want := basicAuth("loki-basic-auth-header", user, password)
	e.t.Cleanup(func() { e.expectLokiAuth(r, "--loki.username/--loki.password-file", want) })
	return []string{"--loki.username=" + user, "--loki.password-file=" + file}
}

// lokiBearer starts a Loki receiver and returns crowsnest's flags to push
// to it with a registered bearer token in a file; at the end of the test it
// checks that every push carried the token.
func (e *Env) lokiBearer() []string {
	e.t.Helper()
	r, lokiURL := e.startLoki()
	token, file := e.secretFile("loki-bearer-token")
	e.t.Cleanup(func() { e.expectLokiAuth(r, "--loki.bearer-token-file", "Bearer "+token) })
	return []string{"--loki.url=" + lokiURL, "--loki.bearer-token-file=" + file}
}

// lokiURLWithPassword starts a Loki receiver and returns crowsnest's flag
// to push to it with a registered password in the URL; at the end of the
// test it checks that every push carried it.
func (e *Env) lokiURLWithPassword() []string {
	e.t.Helper()
	r, lokiURL := e.startLoki()
	withPassword := e.withPassword(lokiURL, "loki-url-password")
	u, _ := url.Parse(withPassword)
	password, _ := u.User.Password()
	want := basicAuth("loki-url-basic-auth-header", u.User.Username(), password)
	e.t.Cleanup(func() { e.expectLokiAuth(r, "--loki.url with user information", want) })
	return []string{"--loki.url=" + withPassword}
}

func (e *Env) startLoki() (*lokitest.Receiver, string) {
	e.t.Helper()
	r := &lokitest.Receiver{}
	lokiURL, stop, err := r.Start()
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(stop)
	return r, lokiURL
}

// expectLokiAuth fails the test if a push r received lacked the
// Authorization header want (which it never prints).
func (e *Env) expectLokiAuth(r *lokitest.Receiver, how, want string) {
	reqs := r.Requests()
	bad := 0
	for _, q := range reqs {
		if q.Authorization != want {
			bad++
		}
	}
	switch {
	case bad > 0:
		e.t.Errorf("%d of %d Loki pushes lacked the credentials of %s", bad, len(reqs), how)
	case len(reqs) == 0:
		e.t.Logf("no Loki push: the credentials of %s were read but not sent", how)
	default:
		e.t.Logf("all %d Loki pushes carried the credentials of %s", len(reqs), how)
	}
}

// saveMetrics keeps what crowsnest's /metrics serves now in LogDir, so that
// its labels are searched for secrets.
func (e *Env) saveMetrics(c *Crowsnest) {
	status, body, err := c.Get("/metrics")
	if err == nil && status != http.StatusOK {
		err = fmt.Errorf("status %d", status)
	}
	if err != nil {
		e.t.Logf("no /metrics snapshot of %s before it stops: %v", c.Name, err)
		return
	}
	e.mu.Lock()
	e.metricsN++
	n := e.metricsN
	e.mu.Unlock()
	path := filepath.Join(e.LogDir, fmt.Sprintf("%s-metrics-%d.txt", sanitize(c.Name), n))
	secrets.AddFile(path, c.Name+" /metrics", true)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		e.t.Errorf("keep /metrics of %s: %v", c.Name, err)
	}
}

// keepOutputs copies the recordings (*.jsonl) that `crowsnest record` wrote
// under DataDir into LogDir/recordings before DataDir is removed.
func (e *Env) keepOutputs() {
	err := filepath.WalkDir(e.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || !strings.HasSuffix(path, ".jsonl") {
			return nil // a directory the test took away, or not a recording
		}
		rel, err := filepath.Rel(e.DataDir, path)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		to := filepath.Join(e.LogDir, "recordings", sanitize(rel))
		secrets.AddFile(to, "crowsnest record", true)
		if err := os.MkdirAll(filepath.Dir(to), 0o700); err != nil {
			return err
		}
		return os.WriteFile(to, data, 0o600)
	})
	if err != nil {
		e.t.Errorf("keep the recordings: %v", err)
	}
}

// TestSecretCheck runs the search over outputs with secrets planted in
// them: a secret in crowsnest's log or /metrics fails the check, one in
// another program's log is only reported, a redacted command line is
// clean, and no finding prints the secret.
func TestSecretCheck(t *testing.T) {
	r := newSecretRegistry()
	dir := t.TempDir()
	token := r.New("argocd-token")
	password := r.New("loki-password")
	write := func(name, program string, crowsnest bool, content string) {
		path := filepath.Join(dir, name)
		r.AddFile(path, program, crowsnest)
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("crowsnest.log", "crowsnest", true, "line 1\n"+r.Redact("==== e2e: run 1 of crowsnest: --loki.url=http://u:"+password+"@h\n")+
		`time=x level=INFO msg="using token" token=`+token+"\n")
	write("crowsnest-metrics-1.txt", "crowsnest /metrics", true, `crowsnest_alerts_sent_total{alertmanager="http://u:`+password+`@h"} 1`)
	write("argocd-server.log", "argocd-server", false, "a\nb\nlogin with "+password)
	r.AddDir(dir, "TestPlanted")
	r.FinishDir(dir, false)

	var out strings.Builder
	leaks := r.Check(&out)
	t.Logf("check output:\n%s", out.String())
	if leaks != 2 {
		t.Errorf("%d leaks found, want 2 (crowsnest.log:3, crowsnest-metrics-1.txt:1)", leaks)
	}
	for _, want := range []string{
		`secret "argocd-token" appears in ` + filepath.Join(dir, "crowsnest.log") + `:3 `,
		`secret "loki-password" appears in ` + filepath.Join(dir, "crowsnest-metrics-1.txt") + `:1 `,
		`note: secret "loki-password" appears in ` + filepath.Join(dir, "argocd-server.log") + `:3 `,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the check does not say %q", want)
		}
	}
	if strings.Contains(out.String(), token) || strings.Contains(out.String(), password) {
		t.Error("the check printed a secret")
	}
	r.RemoveDirs(io.Discard, false)
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("a dir with a leak was removed: %v", err)
	}
}
