//go:build e2e

package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// scaleProfiler fetches Go profiles from crowsnest's /debug/pprof (if the
// binary serves it on its web address) during the run with all apps: a CPU
// profile from the first moment /healthz answers (the start-up: list,
// decode, render) and a heap profile once the memory was read.
// CROWSNEST_SCALE_PPROF=DIR turns it on; the files are
// DIR/<binary>-<run>-{cpu-startup,heap}.pprof, for `go tool pprof`.
type scaleProfiler struct {
	dir     string
	seconds int
	done    chan struct{}
	note    string // what happened to the CPU profile
}

func newScaleProfiler(dir string, seconds int) *scaleProfiler {
	if dir == "" {
		return nil
	}
	return &scaleProfiler{dir: dir, seconds: seconds, done: make(chan struct{})}
}

func (sp *scaleProfiler) file(b scaleBinary, run scaleRun, kind string) string {
	return filepath.Join(sp.dir, sanitize(b.name+"-"+run.name+"-"+kind)+".pprof")
}

// startCPU starts the start-up CPU profile in the background; wait waits
// for it.
func (sp *scaleProfiler) startCPU(url string, b scaleBinary, run scaleRun) {
	go func() {
		defer close(sp.done)
		client := &http.Client{Timeout: time.Duration(sp.seconds+30) * time.Second}
		defer client.CloseIdleConnections()
		deadline := time.Now().Add(30 * time.Second)
		for {
			resp, err := client.Get(url + "/healthz")
			if err == nil {
				resp.Body.Close()
				break
			}
			if time.Now().After(deadline) {
				sp.note = "no /healthz within 30 s"
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		sp.note = sp.fetch(client, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", url, sp.seconds), sp.file(b, run, "cpu-startup"))
	}()
}

func (sp *scaleProfiler) wait() string {
	<-sp.done
	return sp.note
}

// heap fetches a heap profile now.
func (sp *scaleProfiler) heap(url string, b scaleBinary, run scaleRun) string {
	client := &http.Client{Timeout: time.Minute}
	defer client.CloseIdleConnections()
	return sp.fetch(client, url+"/debug/pprof/heap", sp.file(b, run, "heap"))
}

// fetch saves the answer of url to file and says what it did.
func (sp *scaleProfiler) fetch(client *http.Client, url, file string) string {
	resp, err := client.Get(url)
	if err != nil {
		return fmt.Sprintf("%s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Sprintf("%s: %s (the binary serves no pprof)", url, resp.Status)
	}
	if err := os.MkdirAll(sp.dir, 0o755); err != nil {
		return err.Error()
	}
	f, err := os.Create(file)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if _, err := io.Copy(f, resp.Body); err != nil {
		return fmt.Sprintf("%s: %v", url, err)
	}
	return "wrote " + file
}
