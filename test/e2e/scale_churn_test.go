//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/argoproj/argo-cd/v3/pkg/client/clientset/versioned"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

const (
	// churnDrain is how long the poller keeps looking for the last changes
	// once the churn has stopped; a change not seen by then is missed.
	churnDrain = 30 * time.Second
	// churnWorkers bounds the patches in flight: enough that the rate
	// holds through a slow patch, few enough not to queue in the API
	// server (with 64, patches took 3 s at the median on a loaded machine,
	// throughput unchanged).
	churnWorkers = 16
)

// churnResult is what the churn measured. A latency runs from the API
// server's answer to the patch (the write is committed by then, and its
// watch event follows the commit; 0 if the poller saw it earlier) until the
// end of the first scrape that showed the new state. fromSent* count from
// the moment the patch was sent instead, so they include the patch's own
// time in the API server. The change became visible after the start of the
// scrape before (which did not show it), so each latency is known within
// (that start, this end]: bound is the median width of that window, the
// resolution the poller's interval and scrape time give.
type churnResult struct {
	rate, achieved       float64 // asked for and achieved patches per second
	duration             time.Duration
	sent, failed, missed int
	observed             int
	p50, p90, p99, max   time.Duration
	fromSentP50          time.Duration
	fromSentP99          time.Duration
	// The same changes as a plain watch in the test saw them: from the
	// patch's answer to the watch event (the API server's delivery), and
	// from that event to the end of the scrape showing it (crowsnest's
	// share, with the poller's resolution).
	deliveryP50, deliveryP99 time.Duration
	ownP50, ownP99           time.Duration
	kasCPU                   float64 // kube-apiserver's CPU share during the churn, in cores
	bound                    time.Duration
	patchP50, patchP99       time.Duration // the API server's answer to a patch
	polls                    int
	pollCycle, pollScrape    time.Duration // medians
	cpu                      float64       // crowsnest's CPU share during the churn (the poller's scrapes included), in cores
}

func (c *churnResult) String() string {
	return fmt.Sprintf("%d patches in %v (%.1f/s), %d failed, %d seen, %d missed; event to metric p50 %v, p90 %v, p99 %v, max %v (each within %v; from the patch's sending p50 %v, p99 %v); watch delivery p50 %v, p99 %v, then crowsnest p50 %v, p99 %v; patch p50 %v, p99 %v; %d polls, cycle %v, scrape %v; crowsnest %.2f cores, kube-apiserver %.2f cores",
		c.sent, c.duration.Round(time.Second), c.achieved, c.failed, c.observed, c.missed, ms(c.p50), ms(c.p90), ms(c.p99), ms(c.max), ms(c.bound),
		ms(c.fromSentP50), ms(c.fromSentP99), ms(c.deliveryP50), ms(c.deliveryP99), ms(c.ownP50), ms(c.ownP99),
		ms(c.patchP50), ms(c.patchP99), c.polls, ms(c.pollCycle), ms(c.pollScrape), c.cpu, c.kasCPU)
}

func ms(d time.Duration) time.Duration { return d.Round(time.Millisecond) }

// churnChange is one status patch the poller waits to see.
type churnChange struct {
	app        int
	family     string // crowsnest_app_sync_status or crowsnest_app_health_status
	want       string // the status label whose series turns 1
	sent, done time.Time
	delivered  time.Time // when the test's own watch saw it
	seen       bool
}

// churner flips the sync status or the health of random apps, writing
// status as the application controller does (a merge patch of the changed
// fields: the status, the whole resources list, reconciledAt), while a
// poller scrapes crowsnest and notes when each change shows.
type churner struct {
	fleet  scaleFleet
	client versioned.Interface
	url    string

	mu      sync.Mutex
	state   []appState
	pending map[string]*churnChange // by app name: one change per app at a time

	latencies, fromSent []time.Duration
	bounds, patches     []time.Duration
	delivery, own       []time.Duration
	failed, missed      int
	cycles, scrapes     []time.Duration
}

// churn measures the event-to-metric latency under cfg.churnRate patches
// per second for cfg.churnDuration, then writes the touched apps back to
// their first state (so a compared binary sees the same objects).
func churn(t *testing.T, kas *KubeAPIServer, url string, pid int, cfg scaleConfig) (*churnResult, error) {
	t.Helper()
	rc := kas.RESTConfig()
	rc.QPS, rc.Burst = 1000, 1000
	rc.WarningHandler = rest.NoWarnings{}
	client, err := versioned.NewForConfig(rc)
	if err != nil {
		return nil, err
	}
	c := &churner{fleet: cfg.fleet, client: client, url: url, pending: map[string]*churnChange{}}
	c.state = make([]appState, cfg.fleet.apps)
	for i := range c.state {
		c.state[i] = cfg.fleet.baseState(i)
	}
	ctx := t.Context()
	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	if err := c.watch(watchCtx); err != nil {
		return nil, err
	}
	stopPatching := make(chan struct{})
	pollerDone := make(chan error, 1)
	go func() { pollerDone <- c.poll(ctx, cfg.pollInterval, stopPatching) }()

	res := &churnResult{rate: cfg.churnRate}
	cpu0, kasCPU0 := procCPU(pid), procCPU(kas.pid())
	start := time.Now()
	period := time.Duration(float64(time.Second) / cfg.churnRate)
	sem := make(chan struct{}, churnWorkers)
	var wg sync.WaitGroup
	// The n-th patch is due at start + n periods; one that is late (all
	// workers busy) goes as soon as it can, so the mean rate holds.
	for n := 0; ctx.Err() == nil; n++ {
		due := start.Add(time.Duration(n) * period)
		if due.Sub(start) >= cfg.churnDuration {
			break
		}
		time.Sleep(time.Until(due))
		ch, ok := c.next()
		if !ok {
			continue
		}
		res.sent++
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c.send(ctx, ch)
		})
	}
	wg.Wait()
	res.duration = time.Since(start)
	close(stopPatching)
	perr := <-pollerDone
	res.cpu = (procCPU(pid) - cpu0) / time.Since(start).Seconds()
	res.kasCPU = (procCPU(kas.pid()) - kasCPU0) / time.Since(start).Seconds()
	stopWatch()

	c.mu.Lock()
	res.failed, res.missed = c.failed, c.missed
	res.observed = len(c.latencies)
	res.achieved = float64(res.sent) / res.duration.Seconds()
	res.p50, res.p90, res.p99, res.max = percentile(c.latencies, 50), percentile(c.latencies, 90), percentile(c.latencies, 99), percentile(c.latencies, 100)
	res.fromSentP50, res.fromSentP99 = percentile(c.fromSent, 50), percentile(c.fromSent, 99)
	res.deliveryP50, res.deliveryP99 = percentile(c.delivery, 50), percentile(c.delivery, 99)
	res.ownP50, res.ownP99 = percentile(c.own, 50), percentile(c.own, 99)
	res.bound = percentile(c.bounds, 50)
	res.patchP50, res.patchP99 = percentile(c.patches, 50), percentile(c.patches, 99)
	res.polls = len(c.scrapes)
	res.pollCycle, res.pollScrape = percentile(c.cycles, 50), percentile(c.scrapes, 50)
	c.mu.Unlock()

	if err := c.restore(ctx); err != nil {
		return res, errors.Join(perr, fmt.Errorf("restore the apps: %w", err))
	}
	if perr == nil && res.missed > 0 {
		perr = fmt.Errorf("%d of %d changes not seen within %v of the churn's end", res.missed, res.sent-res.failed, churnDrain)
	}
	return res, perr
}

// next picks a random app without a change in flight and flips its sync
// status or its health.
func (c *churner) next() (*churnChange, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for range 10 {
		i := rand.IntN(c.fleet.apps)
		name := c.fleet.appName(i)
		if c.pending[name] != nil {
			continue
		}
		s := c.state[i]
		ch := &churnChange{app: i}
		if rand.IntN(2) == 0 {
			s.outOfSync = !s.outOfSync
			ch.family, ch.want = "crowsnest_app_sync_status", string(s.sync())
		} else {
			s.degraded = !s.degraded
			ch.family, ch.want = "crowsnest_app_health_status", string(s.health())
		}
		c.state[i] = s
		c.pending[name] = ch
		return ch, true
	}
	return nil, false
}

// send writes the change; a failed write is forgotten (and its state
// flipped back).
func (c *churner) send(ctx context.Context, ch *churnChange) {
	c.mu.Lock()
	s := c.state[ch.app]
	ch.sent = time.Now()
	c.mu.Unlock()
	err := c.patch(ctx, ch.app, s, ch.family == "crowsnest_app_health_status")
	done := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.failed++
		delete(c.pending, c.fleet.appName(ch.app))
		if ch.family == "crowsnest_app_health_status" {
			s.degraded = !s.degraded
		} else {
			s.outOfSync = !s.outOfSync
		}
		c.state[ch.app] = s
		return
	}
	ch.done = done
	c.patches = append(c.patches, done.Sub(ch.sent))
}

// patch writes app i's status for state s as the application controller
// does after a reconciliation: a merge patch of what changed, which for a
// list (status.resources) is the whole list.
func (c *churner) patch(ctx context.Context, i int, s appState, healthChanged bool) error {
	now := metav1.NewTime(time.Now().Truncate(time.Second))
	status := map[string]any{
		"sync":         map[string]any{"status": s.sync()},
		"resources":    c.fleet.appResources(i, s),
		"reconciledAt": now,
	}
	if healthChanged {
		status["health"] = map[string]any{"status": s.health(), "lastTransitionTime": now}
	}
	body, err := json.Marshal(map[string]any{"status": status})
	if err != nil {
		return err
	}
	return retryTransient(ctx, func() error {
		_, err := c.client.ArgoprojV1alpha1().Applications(c.fleet.appNamespace(i)).Patch(ctx, c.fleet.appName(i),
			types.MergePatchType, body, metav1.PatchOptions{FieldManager: "argocd-application-controller"})
		return err
	})
}

// poll scrapes crowsnest every interval (start to start; back to back if a
// scrape takes longer) until stop is closed and every change was seen, or
// churnDrain has passed since.
func (c *churner) poll(ctx context.Context, interval time.Duration, stop <-chan struct{}) error {
	tr := &http.Transport{DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	defer tr.CloseIdleConnections()
	var prevStart time.Time
	var drainUntil time.Time
	var buf bytes.Buffer // one scrape; reused
	for {
		if drainUntil.IsZero() {
			select {
			case <-stop:
				drainUntil = time.Now().Add(churnDrain)
			default:
			}
		}
		c.mu.Lock()
		idle := len(c.pending) == 0
		c.mu.Unlock()
		if !drainUntil.IsZero() && (idle || time.Now().After(drainUntil)) {
			c.mu.Lock()
			c.missed = len(c.pending)
			c.mu.Unlock()
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		start := time.Now()
		seen, err := c.scrape(client, &buf)
		end := time.Now()
		if err != nil {
			return err
		}
		c.mu.Lock()
		c.scrapes = append(c.scrapes, end.Sub(start))
		if !prevStart.IsZero() {
			c.cycles = append(c.cycles, start.Sub(prevStart))
		}
		for _, ch := range seen {
			from := ch.done
			if from.IsZero() || from.After(end) {
				// Seen before the patch's answer arrived.
				from = end
			}
			c.latencies = append(c.latencies, end.Sub(from))
			c.fromSent = append(c.fromSent, end.Sub(ch.sent))
			if !ch.delivered.IsZero() {
				c.delivery = append(c.delivery, max(ch.delivered.Sub(from), 0))
				c.own = append(c.own, max(end.Sub(ch.delivered), 0))
			}
			c.bounds = append(c.bounds, end.Sub(later(prevStart, ch.sent)))
			delete(c.pending, c.fleet.appName(ch.app))
		}
		c.mu.Unlock()
		prevStart = start
		time.Sleep(time.Until(start.Add(interval)))
	}
}

// watch starts a plain watch of every Application from now on and notes
// when the watch event of each pending change arrives: the API server's
// delivery, which crowsnest's informer waits for too.
func (c *churner) watch(ctx context.Context) error {
	apps := c.client.ArgoprojV1alpha1().RESTClient()
	raw, err := apps.Get().Resource("applications").Param("limit", "1").DoRaw(ctx)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	var list struct {
		Metadata struct {
			ResourceVersion string `json:"resourceVersion"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(raw, &list); err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	body, err := apps.Get().Resource("applications").Param("watch", "true").
		Param("resourceVersion", list.Metadata.ResourceVersion).Param("timeoutSeconds", "3600").Stream(ctx)
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	go func() {
		defer body.Close()
		dec := json.NewDecoder(body)
		for {
			var ev struct {
				Object struct {
					Metadata struct {
						Name string `json:"name"`
					} `json:"metadata"`
					Status struct {
						Sync   struct{ Status string } `json:"sync"`
						Health struct{ Status string } `json:"health"`
					} `json:"status"`
				} `json:"object"`
			}
			if err := dec.Decode(&ev); err != nil {
				return
			}
			now := time.Now()
			c.mu.Lock()
			if ch := c.pending[ev.Object.Metadata.Name]; ch != nil && ch.delivered.IsZero() && !ch.sent.IsZero() {
				got := ev.Object.Status.Sync.Status
				if ch.family == "crowsnest_app_health_status" {
					got = ev.Object.Status.Health.Status
				}
				if got == ch.want {
					ch.delivered = now
				}
			}
			c.mu.Unlock()
		}
	}()
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// churnFamilies are the families the churn flips.
var churnFamilies = []string{"crowsnest_app_sync_status", "crowsnest_app_health_status"}

// scrape reads /metrics once (identity: the cheapest for crowsnest) and
// returns the pending changes it shows. It looks only at the lines of the
// two families the churn flips (the exposition writes a family's series
// together): parsing all 334,000 lines of 10,000 apps cost the poller
// ~175 ms of CPU four times a second, CPU the API server then lacked on a
// 2-core machine, which the measured latency would include.
func (c *churner) scrape(client *http.Client, buf *bytes.Buffer) ([]*churnChange, error) {
	resp, err := client.Get(c.url + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("poll: %s", resp.Status)
	}
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return nil, fmt.Errorf("poll: %w", err)
	}
	body := buf.Bytes()
	var seen []*churnChange
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, family := range churnFamilies {
		lines := familyLines(body, family)
		if lines == nil {
			return nil, fmt.Errorf("poll: no family %s in the scrape", family)
		}
		prefix := []byte(family + "{")
		for l := range bytes.Lines(lines) {
			l = bytes.TrimSuffix(l, []byte("\n"))
			if !bytes.HasPrefix(l, prefix) || !bytes.HasSuffix(l, []byte("} 1")) {
				continue
			}
			line := string(l)
			ch := c.pending[labelValue(line, "name")]
			if ch != nil && !ch.seen && !ch.sent.IsZero() && ch.family == family && labelValue(line, "status") == ch.want {
				ch.seen = true
				seen = append(seen, ch)
			}
		}
	}
	return seen, nil
}

// familyLines returns the lines of family in a text exposition: from its
// TYPE line to the next family's HELP line; nil if it is not there.
func familyLines(body []byte, family string) []byte {
	i := bytes.Index(body, []byte("\n# TYPE "+family+" "))
	if i < 0 {
		return nil
	}
	rest := body[i+1:]
	if j := bytes.Index(rest, []byte("\n# HELP ")); j >= 0 {
		rest = rest[:j+1]
	}
	return rest
}

// restore writes every app the churn left in another state back to its
// first one.
func (c *churner) restore(ctx context.Context) error {
	var todo []int
	for i, s := range c.state {
		if s != c.fleet.baseState(i) {
			todo = append(todo, i)
		}
	}
	work := make(chan int)
	var mu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for range churnWorkers {
		wg.Go(func() {
			for i := range work {
				if err := c.patch(ctx, i, c.fleet.baseState(i), true); err != nil {
					mu.Lock()
					firstErr = cmpOr(firstErr, err)
					mu.Unlock()
				}
			}
		})
	}
	for _, i := range todo {
		work <- i
	}
	close(work)
	wg.Wait()
	return firstErr
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}
