//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// etcdReadyTimeout bounds etcd's start-up.
const etcdReadyTimeout = 30 * time.Second

// Etcd is a single-member etcd for kube-apiserver, on loopback ports.
type Etcd struct {
	*Process
	// ClientURL is where clients reach etcd.
	ClientURL string
}

// NewEtcd prepares an etcd on free ports with its own data directory; Start
// runs it. Restarts keep the ports and the data.
func (e *Env) NewEtcd() *Etcd {
	e.t.Helper()
	client := fmt.Sprintf("http://127.0.0.1:%d", e.Port())
	peer := fmt.Sprintf("http://127.0.0.1:%d", e.Port())
	name := e.instance("etcd")
	p := e.NewProcess(name, bin.etcd,
		"--name=e2e",
		"--data-dir="+e.Dir(name),
		"--listen-client-urls="+client,
		"--advertise-client-urls="+client,
		"--listen-peer-urls="+peer,
		"--initial-advertise-peer-urls="+peer,
		"--initial-cluster=e2e="+peer,
		"--logger=zap",
		"--log-outputs=stderr",
	)
	return &Etcd{Process: p, ClientURL: client}
}

// StartEtcd starts a new etcd and waits until it is healthy.
func (e *Env) StartEtcd() *Etcd {
	e.t.Helper()
	etcd := e.NewEtcd()
	etcd.Start()
	return etcd
}

// Start runs etcd and waits until /health reports it healthy.
func (etcd *Etcd) Start() {
	etcd.t.Helper()
	etcd.Process.Start()
	client := &http.Client{Timeout: 2 * time.Second}
	took := eventually(etcd.t, etcdReadyTimeout, func() error {
		if err := etcd.checkAlive(); err != nil {
			return err
		}
		resp, err := client.Get(etcd.ClientURL + "/health")
		if err != nil {
			return fmt.Errorf("etcd health: %w", err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			return fmt.Errorf("etcd health: %w", err)
		}
		var h struct {
			Health string `json:"health"`
		}
		if err := json.Unmarshal(body, &h); err != nil || h.Health != "true" {
			return fmt.Errorf("etcd health: %s %s", resp.Status, body)
		}
		return nil
	})
	etcd.t.Logf("etcd ready on %s in %v", etcd.ClientURL, took.Round(time.Millisecond))
}
