//go:build e2e

package e2e

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// defaultStopTimeout is how long Stop waits after SIGTERM before it sends
// SIGKILL.
const defaultStopTimeout = 5 * time.Second

// logTailLines is how many lines of each process log a failed test prints.
const logTailLines = 50

// Env is one test's environment: where its processes keep their logs and
// data, and the loopback ports they were given. Each server of the harness
// (etcd, kube-apiserver, crowsnest; later redis, Argo CD, Prometheus, ...) is
// built on it with a NewX or StartX method in its own file.
type Env struct {
	t *testing.T
	// LogDir holds one log file per process, the /metrics snapshots of
	// crowsnest and copies of the recordings (see keepOutputs). TestMain
	// searches it for the suite's secrets once every test has run, then
	// removes it if the test passed; it is kept (its path printed) when the
	// test fails, when a secret is found in it, or when CROWSNEST_E2E_KEEP
	// is set.
	LogDir string
	// DataDir holds the processes' data directories; it is removed at the
	// end of the test.
	DataDir string

	mu       sync.Mutex
	ports    map[int]bool // ports handed out, so no two processes get the same
	procs    []*Process
	metricsN int            // /metrics snapshots kept so far
	named    map[string]int // instances of each server kind so far (instance)
}

// instance names the next server of a kind in this test: kind for the
// first, then kind-2, kind-3…, so two etcds or two API servers (a hub and
// a spoke) get data directories and logs of their own.
func (e *Env) instance(kind string) string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.named == nil {
		e.named = map[string]int{}
	}
	e.named[kind]++
	if n := e.named[kind]; n > 1 {
		return fmt.Sprintf("%s-%d", kind, n)
	}
	return kind
}

// NewEnv creates the environment of t. Its cleanup is registered first, so
// it runs after every process of the test has been stopped.
func NewEnv(t *testing.T) *Env {
	t.Helper()
	logDir, err := os.MkdirTemp("", "crowsnest-e2e-"+sanitize(t.Name())+"-")
	if err != nil {
		t.Fatalf("create log dir: %v", err)
	}
	e := &Env{t: t, LogDir: logDir, ports: map[int]bool{}}
	secrets.AddDir(logDir, t.Name())
	t.Cleanup(func() {
		keep := t.Failed() || os.Getenv("CROWSNEST_E2E_KEEP") != ""
		if keep {
			t.Logf("logs kept in %s", logDir)
		}
		// Removed by TestMain, after it searched it for secrets.
		secrets.FinishDir(logDir, keep)
	})
	e.DataDir = t.TempDir()
	// Runs before DataDir is removed, after every process has stopped.
	t.Cleanup(e.keepOutputs)
	return e
}

// Dir creates and returns a fresh directory under DataDir.
func (e *Env) Dir(name string) string {
	e.t.Helper()
	dir := filepath.Join(e.DataDir, name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		e.t.Fatalf("create %s: %v", dir, err)
	}
	return dir
}

// Port returns a loopback TCP port that is free now and was not handed out
// before in this test. It is taken below the kernel's ephemeral range when
// possible, so that the port stays free while its server is down (an
// outgoing connection cannot take it as its local port in the meantime).
func (e *Env) Port() int {
	e.t.Helper()
	lo, hi := 10000, ephemeralLow()
	e.mu.Lock()
	defer e.mu.Unlock()
	for range 1000 {
		port := 0 // the kernel's choice, if there is no room below the ephemeral range
		if hi-lo >= 1000 {
			port = lo + rand.IntN(hi-lo)
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			continue
		}
		port = l.Addr().(*net.TCPAddr).Port
		l.Close()
		if e.ports[port] {
			continue
		}
		e.ports[port] = true
		return port
	}
	e.t.Fatalf("found no free loopback port")
	return 0
}

// ephemeralLow returns the lowest port of the kernel's ephemeral range, or
// 0 if it is unknown.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return lo
}

// Process is one program the test runs: its output goes to a log file under
// the Env's LogDir, and it is stopped, with its whole process group, when
// the test ends, passed or not. It can be stopped and started again with the
// same arguments (same ports, same data directory).
type Process struct {
	// Name names the process in messages and its log file.
	Name string
	// Path and Args are the program and its arguments.
	Path string
	Args []string
	// Env is added to the test's environment.
	Env []string
	// LogPath is the file that stdout and stderr of every run are
	// appended to.
	LogPath string
	// StopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	StopTimeout time.Duration

	t *testing.T
	// beforeStop, if set, runs when Stop is about to stop the running
	// process (crowsnest keeps a /metrics snapshot with it).
	beforeStop func()

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when the current run has ended
	waitErr error         // how the last run ended; valid once done is closed
	runs    int
	stopped bool // the last run ended through Stop
}

// NewProcess describes a process of the test; Start runs it. It is stopped
// at the end of the test, and its log tail printed if the test failed.
func (e *Env) NewProcess(name, path string, args ...string) *Process {
	e.t.Helper()
	p := &Process{
		Name:        name,
		Path:        path,
		Args:        args,
		LogPath:     filepath.Join(e.LogDir, sanitize(name)+".log"),
		StopTimeout: defaultStopTimeout,
		t:           e.t,
	}
	secrets.AddFile(p.LogPath, name, path == bin.crowsnest)
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.mu.Unlock()
	e.t.Cleanup(func() {
		_ = p.Stop() // logged inside
		if e.t.Failed() {
			p.printLogTail()
		}
	})
	return p
}

// Start runs the process; it fails the test if the process is running
// already or cannot be started.
func (p *Process) Start() {
	p.t.Helper()
	if err := p.start(); err != nil {
		p.t.Fatalf("start %s: %v", p.Name, err)
	}
}

func (p *Process) start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil && !isClosed(p.done) {
		return errors.New("already running")
	}
	log, err := os.OpenFile(p.LogPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("open log: %w", err)
	}
	defer log.Close() // the child has its own copy
	p.runs++
	// The harness writes the command line, not the program: secrets in
	// it (a URL with a password, say) are shown by name only.
	fmt.Fprint(log, secrets.Redact(fmt.Sprintf("==== e2e: run %d of %s at %s: %s %s\n", p.runs, p.Name, time.Now().Format(time.RFC3339Nano), p.Path, strings.Join(p.Args, " "))))
	cmd := exec.Command(p.Path, p.Args...)
	cmd.Env = append(os.Environ(), p.Env...)
	cmd.Stdout = log
	cmd.Stderr = log
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return err
	}
	done := make(chan struct{})
	p.cmd, p.done, p.stopped = cmd, done, false
	go func() {
		err := cmd.Wait()
		p.mu.Lock()
		p.waitErr = err
		p.mu.Unlock()
		if f, ferr := os.OpenFile(p.LogPath, os.O_WRONLY|os.O_APPEND, 0); ferr == nil {
			fmt.Fprintf(f, "==== e2e: %s exited at %s: %v\n", p.Name, time.Now().Format(time.RFC3339Nano), exitString(err))
			f.Close()
		}
		close(done)
	}()
	return nil
}

// Running reports whether the process has been started and not exited.
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil && !isClosed(p.done)
}

// Exited reports whether the process has ended, and how (a nil error for
// exit status 0). It is false while the process runs or before it started.
func (p *Process) Exited() (bool, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || !isClosed(p.done) {
		return false, nil
	}
	return true, p.waitErr
}

// Stop sends SIGTERM to the process group, then SIGKILL if the process has
// not exited after StopTimeout, waits for it, and returns how it ended (nil
// for exit status 0). Stopping a process that is not running returns how its
// last run ended.
func (p *Process) Stop() error {
	p.mu.Lock()
	cmd, done := p.cmd, p.done
	if cmd == nil {
		p.mu.Unlock()
		return nil
	}
	if isClosed(done) {
		already := p.stopped
		p.stopped = true
		err := p.waitErr
		p.mu.Unlock()
		if !already {
			p.t.Logf("%s had exited by itself: %s", p.Name, exitString(err))
		}
		return err
	}
	p.stopped = true
	p.mu.Unlock()
	if p.beforeStop != nil {
		p.beforeStop()
	}

	start := time.Now()
	pgid := cmd.Process.Pid // the process leads its own group, see sysProcAttr
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	how := "SIGTERM"
	select {
	case <-done:
	case <-time.After(p.StopTimeout):
		how = fmt.Sprintf("SIGKILL after SIGTERM was ignored for %v", p.StopTimeout)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
	// Children that outlived the leader still belong to the group.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	p.mu.Lock()
	err := p.waitErr
	p.mu.Unlock()
	p.t.Logf("stopped %s (%s) in %v: %s", p.Name, how, time.Since(start).Round(time.Millisecond), exitString(err))
	return err
}

// LogTail returns the last n lines of the process log.
func (p *Process) LogTail(n int) string {
	f, err := os.Open(p.LogPath)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const maxRead = 256 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > maxRead {
		if _, err := f.Seek(-maxRead, io.SeekEnd); err != nil {
			return fmt.Sprintf("(read log: %v)", err)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return fmt.Sprintf("(read log: %v)", err)
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

func (p *Process) printLogTail() {
	p.t.Logf("last %d lines of %s (%s):\n%s", logTailLines, p.Name, p.LogPath, p.LogTail(logTailLines))
}

// checkAlive returns an error if the process has exited, for use in
// readiness loops so that a crashed server fails fast.
func (p *Process) checkAlive() error {
	if exited, err := p.Exited(); exited {
		return fmt.Errorf("%s exited: %s; log %s:\n%s", p.Name, exitString(err), p.LogPath, p.LogTail(20))
	}
	return nil
}

func exitString(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

var unsafeChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// sanitize turns a test or process name into a file name.
func sanitize(s string) string {
	return unsafeChars.ReplaceAllString(s, "_")
}

// eventuallyPoll is the interval between tries of eventually.
const eventuallyPoll = 250 * time.Millisecond

// eventually calls f until it returns nil and returns how long that took; it
// fails the test with f's last error if that does not happen within timeout.
func eventually(t testing.TB, timeout time.Duration, f func() error) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(timeout)
	for {
		err := f()
		if err == nil {
			return time.Since(start)
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", timeout, err)
		}
		time.Sleep(eventuallyPoll)
	}
}
