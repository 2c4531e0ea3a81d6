package exposition

import (
	"bytes"
	"compress/gzip"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"

	"github.com/crowsnest/crowsnest/internal/model"
)

// Store holds every app's series pre-rendered in the text exposition format,
// one byte slice per family, as kube-state-metrics does: the work is done
// when an Application changes, and a scrape only copies bytes. Rendered
// slices are never modified after they are stored, so a scrape can write
// them without holding the lock.
//
// It is the tracker's view subscriber (SetApp, DeleteApp) and, for the
// per-app duration histograms, an operation subscriber (Finished).
type Store struct {
	families []family
	// hist is the index of the per-app histogram family; -1 without it.
	hist int
	// "# HELP ...\n# TYPE ...\n" per family, in the text format and in
	// OpenMetrics (where a counter's family name has no _total). The
	// sample lines are the same in both.
	headers, omHeaders [][]byte

	// renderMu serializes rendering; views and hists are the inputs
	// kept to re-render an app when one of them changes.
	renderMu sync.Mutex
	views    map[string]*model.AppView
	hists    map[string]*appHistograms
	sizes    map[string]int // bytes of each app's last rendering

	mu   sync.RWMutex
	apps map[string][][]byte // app key → rendered samples per family
	// filled counts, per family, the apps with samples in it: a scrape
	// skips families no app has (workloads, say) without visiting apps.
	filled []int

	// snapshots recycles the scrape's list of the apps' rendered series
	// (10,000 apps: 240 kB a scrape otherwise left to the GC).
	snapshots sync.Pool
}

// NewStore returns an empty store of the per-app families; perAppHistograms
// adds crowsnest_app_sync_duration_seconds, a histogram per app.
func NewStore(perAppHistograms bool) *Store {
	fams := append(appFamilies(), workloadFamilies()...)
	hist := -1
	if perAppHistograms {
		hist = len(fams)
		fams = append(fams, family{name: appHistogramName, help: appHistogramHelp, typ: typeHistogram})
	}
	s := &Store{families: fams, hist: hist, headers: make([][]byte, len(fams)), omHeaders: make([][]byte, len(fams)),
		views: map[string]*model.AppView{}, hists: map[string]*appHistograms{}, sizes: map[string]int{}, apps: map[string][][]byte{}, filled: make([]int, len(fams))}
	for i, f := range fams {
		s.headers[i] = []byte("# HELP " + f.name + " " + escapeHelp(f.help) + "\n# TYPE " + f.name + " " + f.typ + "\n")
		name := f.name
		if f.typ == typeCounter {
			name = strings.TrimSuffix(name, "_total")
		}
		s.omHeaders[i] = []byte("# HELP " + name + " " + escapeOpenMetricsHelp(f.help) + "\n# TYPE " + name + " " + f.typ + "\n")
	}
	return s
}

// SetApp renders the app's series from its view, replacing earlier ones.
func (s *Store) SetApp(v *model.AppView) {
	key := v.Key()
	s.renderMu.Lock()
	defer s.renderMu.Unlock()
	s.views[key] = v
	s.set(key, s.render(key, v, s.hists[key]))
}

// DeleteApp drops every series of the app.
func (s *Store) DeleteApp(key string) {
	s.renderMu.Lock()
	defer s.renderMu.Unlock()
	delete(s.views, key)
	delete(s.hists, key)
	delete(s.sizes, key)
	s.mu.Lock()
	s.count(s.apps[key], -1)
	delete(s.apps, key)
	s.mu.Unlock()
}

// count adds d to the filled count of every family rendered has samples
// of. Call it with mu held.
func (s *Store) count(rendered [][]byte, d int) {
	for i, b := range rendered {
		if len(b) > 0 {
			s.filled[i] += d
		}
	}
}

// Finished records a finished operation in its app's histogram, when the
// store has per-app histograms.
func (s *Store) Finished(op *model.Operation) {
	if s.hist < 0 {
		return
	}
	key := model.Key(op.Namespace, op.Name)
	s.renderMu.Lock()
	defer s.renderMu.Unlock()
	h := s.hists[key]
	if h == nil {
		h = &appHistograms{}
		s.hists[key] = h
	}
	h.observe(op.Result, max(op.FinishedAt.Sub(op.StartedAt), 0).Seconds())
	if v, ok := s.views[key]; ok {
		s.set(key, s.render(key, v, h))
	}
}

// render renders v's series for every family. All of them go into one
// buffer, sized from the app's last rendering, and each family's samples
// are a capped slice of it: a handful of allocations per app update.
func (s *Store) render(key string, v *model.AppView, h *appHistograms) [][]byte {
	size := 4096
	if prev, ok := s.sizes[key]; ok {
		size = prev + prev/8
	}
	r := &renderer{identity: make([]byte, 0, 128), b: make([]byte, 0, size)}
	r.identity = appendLabel(r.identity, "namespace", v.App.Namespace)
	r.identity = appendLabel(r.identity, "name", v.App.Name)
	r.identity = appendLabel(r.identity, "project", v.App.Spec.Project)
	r.identity = appendLabel(r.identity, "env", v.Env)
	emit := r.emit // one func value for every family: no allocation per family

	ends := make([]int, len(s.families))
	for i := range s.families {
		f := &s.families[i]
		r.name = f.name
		if i == s.hist {
			if h != nil {
				h.render(r.emitNamed)
			}
		} else {
			f.generate(v, emit)
		}
		ends[i] = len(r.b)
	}
	s.sizes[key] = len(r.b)
	out := make([][]byte, len(s.families))
	start := 0
	for i, end := range ends {
		out[i] = r.b[start:end:end] // capped: nothing can append into the next family
		start = end
	}
	return out
}

// renderer appends sample lines of one app, family by family.
type renderer struct {
	identity []byte // the app's identity labels, rendered
	name     string // the current family's name
	b        []byte
}

// emit appends a sample of the current family.
func (r *renderer) emit(value float64, labels ...string) { r.emitNamed(r.name, value, labels...) }

// emitNamed appends a sample named name (a histogram's _bucket, _sum...).
func (r *renderer) emitNamed(name string, value float64, labels ...string) {
	r.b = append(r.b, name...)
	r.b = append(r.b, '{')
	r.b = append(r.b, r.identity...)
	for j := 0; j+1 < len(labels); j += 2 {
		r.b = appendLabel(r.b, labels[j], labels[j+1])
	}
	r.b = append(r.b, '}', ' ')
	r.b = appendValue(r.b, value)
	r.b = append(r.b, '\n')
}

// set stores an app's rendered series under key, replacing earlier ones.
func (s *Store) set(key string, rendered [][]byte) {
	s.mu.Lock()
	s.count(s.apps[key], -1)
	s.count(rendered, +1)
	s.apps[key] = rendered
	s.mu.Unlock()
}

// Len returns the number of apps in the store.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.apps)
}

// WriteTo writes every family, with its HELP and TYPE lines, in the text
// exposition format.
func (s *Store) WriteTo(w io.Writer) (int64, error) {
	return s.write(w, s.headers)
}

// WriteOpenMetrics writes every family in the OpenMetrics format, without
// the closing "# EOF" (the caller writes it after all families).
func (s *Store) WriteOpenMetrics(w io.Writer) (int64, error) {
	return s.write(w, s.omHeaders)
}

// write holds the lock only to take a snapshot of the slices, so a slow
// reader never blocks the tracker.
func (s *Store) write(w io.Writer, headers [][]byte) (int64, error) {
	buf, _ := s.snapshots.Get().(*[][][]byte)
	if buf == nil {
		buf = new([][][]byte)
	}
	s.mu.RLock()
	snapshot := (*buf)[:0]
	for _, r := range s.apps {
		snapshot = append(snapshot, r)
	}
	filled := append(make([]int, 0, 32), s.filled...)
	s.mu.RUnlock()
	defer func() {
		// Keep the slice, not what it points to, for the next scrape.
		clear(snapshot)
		*buf = snapshot[:0]
		s.snapshots.Put(buf)
	}()

	var n int64
	for i := range s.families {
		m, err := w.Write(headers[i])
		n += int64(m)
		if err != nil {
			return n, err
		}
		if filled[i] == 0 {
			continue
		}
		for _, r := range snapshot {
			if len(r[i]) == 0 {
				continue
			}
			m, err := w.Write(r[i])
			n += int64(m)
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// MetricsHandler serves the metrics of self (the daemon's own registry)
// followed by the store's, in OpenMetrics when the client asks for it (the
// only format that carries exemplars) and else in the Prometheus text
// format, gzip-compressed when the client accepts it.
type MetricsHandler struct {
	self   prometheus.Gatherer
	store  *Store
	logger *slog.Logger
	gzips  sync.Pool
}

// NewMetricsHandler returns the /metrics handler.
func NewMetricsHandler(self prometheus.Gatherer, store *Store, logger *slog.Logger) *MetricsHandler {
	return &MetricsHandler{self: self, store: store, logger: logger}
}

// ServeHTTP implements http.Handler.
func (h *MetricsHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	format := expfmt.NewFormat(expfmt.TypeTextPlain)
	openMetrics := expfmt.NegotiateAccept(r.Header, expfmt.DefaultOpenMetricsAcceptedFormats()...).FormatType() == expfmt.TypeOpenMetrics
	if openMetrics {
		format = expfmt.NewFormat(expfmt.TypeOpenMetrics)
	}
	mfs, err := h.self.Gather()
	if err != nil {
		// A broken self metric must not hide the apps' metrics.
		h.logger.Error("gather self metrics", "err", err)
	}
	var selfText bytes.Buffer
	enc := expfmt.NewEncoder(&selfText, format)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			h.logger.Error("encode self metric", "metric", mf.GetName(), "err", err)
		}
	}

	w.Header().Set("Content-Type", string(format))
	var out io.Writer = w
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		gz, _ := h.gzips.Get().(*gzip.Writer)
		if gz == nil {
			// BestSpeed: the exposition compresses ~20x even so, and the
			// default level costs several times the CPU per scrape.
			gz, _ = gzip.NewWriterLevel(w, gzip.BestSpeed)
		} else {
			gz.Reset(w)
		}
		defer func() {
			if err := gz.Close(); err != nil {
				h.logger.Debug("close gzip writer", "err", err)
			}
			h.gzips.Put(gz)
		}()
		out = gz
	}
	if _, err := out.Write(selfText.Bytes()); err != nil {
		h.logger.Debug("write metrics", "err", err)
		return
	}
	var werr error
	if openMetrics {
		if _, werr = h.store.WriteOpenMetrics(out); werr == nil {
			_, werr = expfmt.FinalizeOpenMetrics(out)
		}
	} else {
		_, werr = h.store.WriteTo(out)
	}
	if werr != nil {
		// The scraper went away; nothing to tell it.
		h.logger.Debug("write metrics", "err", werr)
	}
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(enc, "gzip") {
			return true
		}
	}
	return false
}

// Families returns the name and type of every family the store renders.
func (s *Store) Families() map[string]string {
	out := make(map[string]string, len(s.families))
	for _, f := range s.families {
		out[f.name] = f.typ
	}
	return out
}
