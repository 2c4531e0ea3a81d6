//go:build e2e

package e2e

import (
	"fmt"
	"strings"
	"time"
)

// scaleReport is one benchmark's figures, rendered as Markdown for
// docs/scale.md.
type scaleReport struct {
	cfg                 scaleConfig
	started             time.Time
	machine, machineEnd string // machineEnd: the load average at the end
	setup               time.Duration
	appJSON, appManaged float64
	etcdDB, etcdDBEnd   float64
	kasRSS, etcdRSS     float64 // after the setup
	kasHWM, etcdHWM     float64 // peaks at the end
	wall                time.Duration
	results             []scaleResult
	lists               []listProbe
}

func (r *scaleReport) markdown() string {
	var b strings.Builder
	f := r.cfg.fleet
	fmt.Fprintf(&b, "#### %s UTC: %s apps × %d resources", r.started.Format("2006-01-02 15:04"), thousands(f.apps), f.resources)
	if f.workloads > 0 {
		fmt.Fprintf(&b, ", %s Deployments", thousands(f.workloads))
	}
	names := []string{}
	for _, res := range r.results {
		if len(names) == 0 || names[len(names)-1] != res.binary {
			names = append(names, res.binary)
		}
	}
	fmt.Fprintf(&b, " (%s)\n\n", strings.Join(names, " vs "))
	fmt.Fprintf(&b, "- Machine: %s; load average at the end %s; the whole benchmark took %v.\n", r.machine, r.machineEnd, r.wall.Round(time.Second))
	for _, name := range names {
		for _, res := range r.results {
			if res.binary == name && res.build != "" {
				fmt.Fprintf(&b, "- %s: crowsnest_build_info %s.\n", name, res.build)
				break
			}
		}
	}
	fmt.Fprintf(&b, "- Fleet: %s Applications in namespaces of %s, each %s resources in status.resources and in its finished sync's result, %d history entries, %.0f%% drifted (OutOfSync, %d of %d resources OutOfSync); %s of JSON each as served (managed fields %s). Spec server-side applied, status merge-patched (manager argocd-application-controller).\n",
		thousands(f.apps), thousands(scaleAppsPerNamespace), thousands(f.resources), f.history, f.drift*100, driftedCount(f.resources), f.resources,
		size(r.appJSON), size(r.appManaged))
	cache := "on"
	if !r.cfg.watchCache {
		cache = "off for Applications (--watch-cache-sizes=applications.argoproj.io#0: lists and watches from etcd)"
	}
	fmt.Fprintf(&b, "- kube-apiserver watch cache %s.\n", cache)
	fmt.Fprintf(&b, "- Setup: %v to create %s objects with %d writers (%.0f/s); etcd database %s after it, %s at the end; kube-apiserver RSS %s after it, peak %s; etcd RSS %s, peak %s.\n\n",
		r.setup.Round(time.Second), thousands(f.apps+f.workloads), f.writers, float64(f.apps+f.workloads)/r.setup.Seconds(),
		size(r.etcdDB), size(r.etcdDBEnd), mib(r.kasRSS), mib(r.kasHWM), mib(r.etcdRSS), mib(r.etcdHWM))

	if len(r.lists) > 0 {
		b.WriteString("The API server's cost of one list of every app, without crowsnest (`CROWSNEST_SCALE_LIST_PROBE`):\n\n")
		b.WriteString("| list | items | bytes | took | kube-apiserver CPU | etcd CPU | kube-apiserver peak RSS growth |\n|---|--:|--:|--:|--:|--:|--:|\n")
		for _, l := range r.lists {
			took := secs(l.took)
			if l.err != "" {
				took += " (" + escapePipes(l.err) + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %.1f s | %.1f s | %s |\n", l.mode, thousands(l.items), size(float64(l.bytes)), took, l.kasCPU, l.etcd, mib(l.kasHWMGrowth))
		}
		b.WriteString("\n")
	}
	b.WriteString("| binary | run | apps | load at start | /readyz | all series served | CPU to ready | kube-apiserver, etcd CPU meanwhile | peak RSS (VmHWM) | RSS after 3 scrapes | anon RSS | heap in use | live heap |\n")
	b.WriteString("|---|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, res := range r.results {
		if res.ready == 0 {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | **failed: %s** | | | | %s | | | | |\n", res.binary, res.run, thousands(res.apps), res.load,
				escapePipes(res.err), mib(res.peakRSS))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s (±%s) | %.1f s | %.1f s, %.1f s | %s | %s | %s | %s | ~%s |\n", res.binary, res.run, thousands(res.apps), res.load,
			secs(res.readyz), secs(res.ready), secs(res.readyStep), res.cpuReady, res.kasCPU, res.etcdCPU, mib(res.peakRSS), mib(res.endRSS), mib(res.endAnon),
			mib(res.heapInuse), mib(res.liveHeap))
	}
	b.WriteString("\n| binary | run | encoding | bytes | median | fastest | slowest | first byte | crowsnest CPU per scrape | decoded |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, res := range r.results {
		for _, e := range res.encodings {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %.0f ms | %s, %s lines |\n", res.binary, res.run, e.name, size(float64(e.bytes)),
				msec(e.median), msec(e.fastest), msec(e.slowest), msec(e.firstByte), e.cpu*1000, size(float64(e.decodedBytes)), thousands(e.lines))
		}
	}
	churned := false
	for _, res := range r.results {
		if res.churn == nil {
			continue
		}
		if !churned {
			churned = true
			fmt.Fprintf(&b, "\nEvent to metric: %.0f status patches/s for %v (a random app's sync status or health flipped, the whole resources list in the patch, as the controller writes it); a poller scrapes /metrics (identity) every %v, start to start, back to back when a scrape takes longer, and parses only the two families flipped. A latency runs from the API server's answer to the patch (the write is committed by then) to the end of the first scrape showing the change, so it is an upper bound by up to one poll cycle: the change became visible after the previous scrape's start (the \"within\" column is the median width of that window). \"From sending\" counts from the patch's sending instead, the API server's write included. A plain watch in the test splits the latency: \"delivery\" from the patch's answer to its watch event reaching that watch (the API server's share; crowsnest's informer waits for the same event), \"crowsnest\" from that event to the end of the scrape showing it (crowsnest's share, plus the poll resolution).\n\n",
				r.cfg.churnRate, r.cfg.churnDuration, r.cfg.pollInterval)
			b.WriteString("| binary | load at start | patches | rate | failed | missed | p50 | p90 | p99 | max | within | from sending p50 / p99 | delivery p50 / p99 | crowsnest p50 / p99 | patch p50 / p99 | poll cycle | poll scrape | crowsnest CPU | kube-apiserver CPU | peak RSS after |\n")
			b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
		}
		c := res.churn
		fmt.Fprintf(&b, "| %s | %s | %d | %.1f/s | %d | %d | %s | %s | %s | %s | %s | %s / %s | %s / %s | %s / %s | %s / %s | %s | %s | %.2f cores | %.2f cores | %s |\n", res.binary, res.load,
			c.sent, c.achieved, c.failed, c.missed, msec(c.p50), msec(c.p90), msec(c.p99), msec(c.max), msec(c.bound),
			msec(c.fromSentP50), msec(c.fromSentP99), msec(c.deliveryP50), msec(c.deliveryP99), msec(c.ownP50), msec(c.ownP99),
			msec(c.patchP50), msec(c.patchP99), msec(c.pollCycle), msec(c.pollScrape), c.cpu, c.kasCPU, mib(res.finalHWM))
	}
	rulesMarkdown(&b, r.cfg, r.results)
	// The cost per app, from the runs with no apps and with all of them.
	for _, name := range names {
		var none, apps, all *scaleResult
		for i := range r.results {
			res := &r.results[i]
			if res.binary != name || res.ready == 0 {
				continue
			}
			switch res.run {
			case "none":
				none = res
			case "apps":
				apps = res
			case "apps and workloads":
				all = res
			}
		}
		if none == nil || apps == nil || apps.apps == 0 {
			continue
		}
		per := func(a, z float64, n int) float64 { return (a - z) / float64(n) / 1024 }
		fmt.Fprintf(&b, "\n%s: per app %.1f KiB peak RSS, %.1f KiB live heap, %.2f ms of CPU to start; base %s peak RSS.",
			name, per(apps.peakRSS, none.peakRSS, apps.apps), per(apps.liveHeap, none.liveHeap, apps.apps),
			(apps.cpuReady-none.cpuReady)*1000/float64(apps.apps), mib(none.peakRSS))
		if all != nil && all.workloads > 0 {
			fmt.Fprintf(&b, " Per workload %.1f KiB peak RSS, %.1f KiB live heap.",
				per(all.peakRSS, apps.peakRSS, all.workloads), per(all.liveHeap, apps.liveHeap, all.workloads))
		}
	}
	b.WriteString("\n")
	return b.String()
}

func driftedCount(resources int) int {
	n := 0
	for k := range resources {
		if driftedResource(k) {
			n++
		}
	}
	return n
}

func secs(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }

func msec(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 100*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	}
}

func thousands(n int) string {
	s := fmt.Sprint(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func escapePipes(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
