//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned"
	"k8s.io/client-go/rest"
)

// listProbe is what one way of reading every Application cost the API
// server, measured without crowsnest (CROWSNEST_SCALE_LIST_PROBE=1): how a
// start-up's first list could be asked for.
type listProbe struct {
	mode         string
	took         time.Duration
	bytes        int64
	items        int
	kasCPU, etcd float64 // CPU seconds
	kasHWMGrowth float64 // kube-apiserver VmHWM growth during the probe, bytes
	err          string
}

// probeLists reads every Application several ways, one after the other:
// in pages of 500 at the current resource version (client-go asks for
// gzip, which the API server applies to answers over 128 KiB), the same
// without gzip, whole at resourceVersion=0 (from the watch cache;
// client-go's default first list), the same without gzip three times
// (crowsnest's first list), and as a streaming watch list
// (sendInitialEvents, the WatchList feature), and notes each one's time,
// bytes and the API server's and etcd's CPU. With only "whole" (the
// CROWSNEST_SCALE_LIST_PROBE value) it skips the pages, which at 10,000
// apps take minutes.
func probeLists(t *testing.T, etcd *Etcd, kas *KubeAPIServer, only string) []listProbe {
	t.Helper()
	rc := kas.RESTConfig()
	rc.Timeout = 15 * time.Minute // a whole list of 50,000 apps
	cs, err := versioned.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	client := cs.ArgoprojV1alpha1().RESTClient()
	rc.DisableCompression = true
	plain, err := versioned.NewForConfig(rc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	modes := []struct {
		name   string
		client rest.Interface
		run    func(context.Context, rest.Interface) (int64, int, error)
	}{
		{"pages of 500, current resourceVersion", client, listPaged},
		{"pages of 500, no gzip (rest.Config.DisableCompression)", plain.ArgoprojV1alpha1().RESTClient(), listPaged},
		{"whole list, resourceVersion=0", client, listWhole},
		// crowsnest's first list, three times: what the API server
		// alone needs before crowsnest can be ready, and how much that
		// varies.
		{"whole list, resourceVersion=0, no gzip (crowsnest's first list)", plain.ArgoprojV1alpha1().RESTClient(), listWhole},
		{"the same, again", plain.ArgoprojV1alpha1().RESTClient(), listWhole},
		{"the same, a third time", plain.ArgoprojV1alpha1().RESTClient(), listWhole},
		{"watch list (sendInitialEvents=true)", client, listStreaming},
	}
	var out []listProbe
	for _, m := range modes {
		if only == "whole" && strings.HasPrefix(m.name, "pages") {
			continue
		}
		kas0, etcd0 := procCPU(kas.pid()), procCPU(etcd.pid())
		hwm0, _ := procField(kas.pid(), "VmHWM")
		start := time.Now()
		n, items, err := m.run(ctx, m.client)
		p := listProbe{mode: m.name, took: time.Since(start), bytes: n, items: items,
			kasCPU: procCPU(kas.pid()) - kas0, etcd: procCPU(etcd.pid()) - etcd0}
		hwm, _ := procField(kas.pid(), "VmHWM")
		p.kasHWMGrowth = hwm - hwm0
		if err != nil {
			p.err = err.Error()
		}
		t.Logf("list probe, %s: %d items, %s in %v; kube-apiserver %.1f s CPU, etcd %.1f s; kube-apiserver peak RSS +%s; %s",
			p.mode, p.items, size(float64(p.bytes)), p.took.Round(100*time.Millisecond), p.kasCPU, p.etcd, mib(p.kasHWMGrowth), p.err)
		out = append(out, p)
	}
	return out
}

// countItems reads a list's JSON and counts its items.
func countItems(r io.Reader) (items int, cont string, err error) {
	var list struct {
		Metadata struct {
			Continue string `json:"continue"`
		} `json:"metadata"`
		Items []json.RawMessage `json:"items"`
	}
	if err := json.NewDecoder(r).Decode(&list); err != nil {
		return 0, "", err
	}
	return len(list.Items), list.Metadata.Continue, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func listPaged(ctx context.Context, client rest.Interface) (int64, int, error) {
	var total int64
	items, cont := 0, ""
	for {
		req := client.Get().Resource("applications").Param("limit", "500")
		if cont != "" {
			req = req.Param("continue", cont)
		}
		body, err := req.Stream(ctx)
		if err != nil {
			return total, items, err
		}
		cr := &countingReader{r: body}
		n, next, err := countItems(cr)
		body.Close()
		total += cr.n
		items += n
		if err != nil || next == "" {
			return total, items, err
		}
		cont = next
	}
}

func listWhole(ctx context.Context, client rest.Interface) (int64, int, error) {
	body, err := client.Get().Resource("applications").Param("resourceVersion", "0").Stream(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer body.Close()
	cr := &countingReader{r: body}
	n, _, err := countItems(cr)
	return cr.n, n, err
}

// listStreaming reads a watch with sendInitialEvents until the bookmark that
// ends the initial events.
func listStreaming(ctx context.Context, client rest.Interface) (int64, int, error) {
	body, err := client.Get().Resource("applications").
		Param("watch", "true").Param("sendInitialEvents", "true").Param("allowWatchBookmarks", "true").
		Param("resourceVersionMatch", "NotOlderThan").Param("timeoutSeconds", "900").Stream(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer body.Close()
	cr := &countingReader{r: body}
	dec := json.NewDecoder(cr)
	items := 0
	for {
		var ev struct {
			Type   string `json:"type"`
			Object struct {
				Metadata struct {
					Annotations map[string]string `json:"annotations"`
				} `json:"metadata"`
				Message string `json:"message"`
			} `json:"object"`
		}
		if err := dec.Decode(&ev); err != nil {
			return cr.n, items, err
		}
		switch ev.Type {
		case "ADDED":
			items++
		case "BOOKMARK":
			if ev.Object.Metadata.Annotations["k8s.io/initial-events-end"] == "true" {
				return cr.n, items, nil
			}
		case "ERROR":
			return cr.n, items, fmt.Errorf("watch list: %s", strings.TrimSpace(ev.Object.Message))
		}
	}
}
