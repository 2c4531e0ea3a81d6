package exposition

import (
	"bytes"
	"compress/flate"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
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
// It keeps them compressed too, so that a gzip scrape (what Prometheus
// asks for) copies bytes as well instead of compressing the whole
// exposition each time (10,000 apps: 45-61 MB, 90-120 ms of CPU at
// BestSpeed, for every scrape of every Prometheus). The exposition is family-major,
// so the unit is a family's samples of a block of blockApps apps: one
// chunk of deflate data compressed on its own (see gzip.go), and a scrape
// writes one gzip member made of the HELP/TYPE chunk of each family (text
// or OpenMetrics) and the chunks of each block. A block's chunks are
// compressed again when one of its apps changes, for the families whose
// bytes changed only, and not at once: the blocks changed last (at most
// maxPending) wait for an update to another block, so that the updates of
// an app in a row (an operation's progress) and the start-up's stream of
// new apps, which fill one block after the other, compress each block
// once, not once per update. A scrape compresses the stale chunks of
// those few blocks as it writes them, from the rendered bytes.
//
// Apps keep their slot in a block from their first rendering to their
// deletion; a new app takes the slot last freed, else a new block. The
// exposition lists apps by block and slot.
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
	// The headers and OpenMetrics' "# EOF\n" as chunks, made by the first
	// gzip scrape.
	chunksOnce             sync.Once
	headerChunks, omChunks []chunk
	eofChunk               chunk

	// renderMu serializes rendering and every change of blocks; views
	// and hists are the inputs kept to re-render an app when one of them
	// changes.
	renderMu sync.Mutex
	views    map[string]*model.AppView
	hists    map[string]*appHistograms
	sizes    map[string]int // bytes of each app's last rendering
	slots    map[string]slot
	free     []slot // slots of deleted apps and of new blocks, the next one last
	// pending lists the blocks with stale chunks, the last changed first.
	pending []int
	chunks  chunkWriter

	mu sync.RWMutex
	// blocks are never modified once published: a change publishes a
	// new block (under mu), sharing with the old one what it keeps.
	blocks []*block
	apps   int // apps in blocks
	// filled counts, per family, the apps with samples in it: a scrape
	// skips families no app has (workloads, say) without visiting apps.
	filled []int

	// snapshots recycles the scrape's copy of blocks and filled.
	snapshots sync.Pool
}

// blockApps is how many apps share a chunk per family. Measured on the
// exposition of BenchmarkScrape (10,000 apps, 20,000 workloads; 61 MB of
// text, 162,500 non-empty (app, family) slices of 376 bytes on average),
// at BestSpeed; a single stream, as gzip.Writer makes it, is 2.91 MB:
//
//	apps per chunk          1      8     16     32     64    128
//	kB per chunk          0.4      3      6     12     24     48
//	wire, MB             23.6   6.08   4.62   3.83   3.40   3.16
//	x single stream       8.1   2.09   1.59   1.32   1.17   1.09
//	µs per chunk           ~8    ~15    ~19    ~27    ~39   ~100
//
// (A prototype's figures, apps in random order. The store keeps them in
// the order they came, here by name as a list from the API server comes,
// and neighbours compress better: it sends 3.56 MB for that exposition,
// 1.22x, and 2.81 MB for its 45 MB without workloads, 1.33x.)
// A chunk per (app, family) loses what compresses text this repetitive:
// each chunk starts with no history, so its metric name and identity
// labels are literals, and carries its own Huffman tables. 32 keeps the
// wire within a third of a single stream while re-compressing a family of
// a block costs ~27 µs, and the ≤ maxPending stale blocks a scrape
// compresses cost it ≤ ~0.7 ms. Levels above BestSpeed save ~8% of the
// wire for 2-3x the CPU.
const blockApps = 32

// maxPending is how many blocks may wait with stale chunks: the one new
// apps fill at start-up and the one an app being synced is in, say, while
// updates of other apps come in between.
const maxPending = 2

// slot is an app's place: the index of its block and its index in it.
type slot struct{ block, index int }

// block holds the rendered series of blockApps apps and, per family, their
// samples as one compressed chunk.
type block struct {
	apps   []*rendering // index → the app's samples; nil: free
	chunks []chunk      // family → all apps' samples of it, compressed
	stale  []bool       // family → chunks[family] predates apps; nil: none does
}

// isStale tells whether the chunk of family f predates the apps' samples.
func (b *block) isStale(f int) bool { return b.stale != nil && b.stale[f] }

// NewStore returns an empty store of the per-app families; perAppHistograms
// adds crowsnest_app_sync_duration_seconds, a histogram per app.
func NewStore(perAppHistograms bool) *Store {
	fams := append(appFamilies(), workloadFamilies()...)
	hist := -1
	if perAppHistograms {
		hist = len(fams)
		fams = append(fams, family{name: appHistogramName, help: appHistogramHelp, typ: typeHistogram})
	}
	s := &Store{hist: hist, views: map[string]*model.AppView{}, hists: map[string]*appHistograms{}, sizes: map[string]int{}, slots: map[string]slot{}}
	for _, f := range fams {
		s.addFamily(f)
	}
	return s
}

// addFamily adds f after the store's families, with its headers in both
// formats. Only before the first SetApp: renderings hold a slot per family.
func (s *Store) addFamily(f family) {
	s.families = append(s.families, f)
	s.headers = append(s.headers, []byte("# HELP "+f.name+" "+escapeHelp(f.help)+"\n# TYPE "+f.name+" "+f.typ+"\n"))
	name := f.name
	if f.typ == typeCounter {
		name = strings.TrimSuffix(name, "_total")
	}
	s.omHeaders = append(s.omHeaders, []byte("# HELP "+name+" "+escapeOpenMetricsHelp(f.help)+"\n# TYPE "+name+" "+f.typ+"\n"))
	s.filled = append(s.filled, 0)
}

// ExposeAppLabels adds crowsnest_app_labels, the Application labels named
// in allowlist as label_<name> (see AppLabelName), one series per app:
// what alerts join to carry an app's team. Call it before the first
// SetApp; an empty allowlist adds nothing.
func (s *Store) ExposeAppLabels(allowlist []string) {
	if len(allowlist) == 0 {
		return
	}
	names := model.AppLabelNames(allowlist)
	s.addFamily(family{
		name: "crowsnest_app_labels",
		help: "The Application's labels named in --metrics.app-labels-allowlist, as label_<name> (characters other than letters, digits and _ replaced by _); the value is always 1. Alerts join it to carry them.",
		typ:  typeGauge,
		generate: func(v *model.AppView, emit sampleFunc) {
			var pairs []string
			for i, key := range allowlist {
				if value, ok := v.App.Labels[key]; ok {
					pairs = append(pairs, names[i], value)
				}
			}
			emit(1, pairs...)
		},
	})
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
	sl, ok := s.slots[key]
	if !ok {
		return
	}
	delete(s.slots, key)
	old := s.blocks[sl.block]
	prev := old.apps[sl.index]
	nb := &block{apps: slices.Clone(old.apps), chunks: old.chunks, stale: s.staleOf(old)}
	nb.apps[sl.index] = nil
	for f := range s.families {
		if len(prev.family(f)) > 0 {
			nb.stale[f] = true
		}
	}
	s.mu.Lock()
	s.blocks[sl.block] = nb
	s.count(prev, -1)
	s.apps--
	s.mu.Unlock()
	s.free = append(s.free, sl)
	s.changed(sl.block)
}

// count adds d to the filled count of every family rendered has samples
// of. Call it with mu held.
func (s *Store) count(rendered *rendering, d int) {
	if rendered == nil {
		return
	}
	for i := range s.filled {
		if len(rendered.family(i)) > 0 {
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
func (s *Store) render(key string, v *model.AppView, h *appHistograms) *rendering {
	size := 4096
	if prev, ok := s.sizes[key]; ok {
		size = prev + prev/8
	}
	r := &renderer{identity: make([]byte, 0, 128), b: make([]byte, 0, size)}
	r.identity = appendLabel(r.identity, "namespace", v.App.Namespace)
	r.identity = appendLabel(r.identity, "name", v.App.Name)
	r.identity = appendLabel(r.identity, "project", v.App.Spec.Project)
	r.identity = appendLabel(r.identity, "env", v.Env)
	if v.Dest != "" { // empty is absent in Prometheus: an app whose destination names no cluster
		r.identity = appendLabel(r.identity, "dest_cluster", v.Dest)
	}
	emit := r.emit // one func value for every family: no allocation per family

	ends := make([]uint32, len(s.families))
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
		ends[i] = uint32(len(r.b))
	}
	s.sizes[key] = len(r.b)
	if cap(r.b)-len(r.b) > len(r.b)/32 {
		// The buffer grew past what the app needs (a first rendering
		// starts at 4 KiB and grows by a quarter, a later one has an
		// eighth to spare): keep only what was written, since the
		// rendering stays as long as the app (BenchmarkMemoryPerDecodedApp:
		// 21.8 -> 21.3 KB an app).
		r.b = slices.Clip(append(make([]byte, 0, len(r.b)), r.b...))
	}
	return &rendering{b: r.b, ends: ends}
}

// rendering is an app's series, its families' samples one after the other:
// one slice and an end offset per family, rather than a slice per family
// (24 bytes each; BenchmarkMemoryPerDecodedApp: 0.7 KB an app less).
type rendering struct {
	b    []byte
	ends []uint32 // family f's samples are b[ends[f-1]:ends[f]]
}

// family returns the samples of family f, capped: nothing can append into
// the next family. A nil rendering has none.
func (r *rendering) family(f int) []byte {
	if r == nil {
		return nil
	}
	start := uint32(0)
	if f > 0 {
		start = r.ends[f-1]
	}
	return r.b[start:r.ends[f]:r.ends[f]]
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
// Call it with renderMu held.
func (s *Store) set(key string, rendered *rendering) {
	sl, ok := s.slots[key]
	if !ok {
		sl = s.newSlot()
		s.slots[key] = sl
	}
	old := s.blocks[sl.block]
	prev := old.apps[sl.index]
	var stale []bool
	for f := range s.families {
		if !bytes.Equal(prev.family(f), rendered.family(f)) {
			if stale == nil {
				stale = s.staleOf(old)
			}
			stale[f] = true
		}
	}
	if stale == nil {
		if ok {
			return // the same bytes: keep the ones published
		}
		stale = s.staleOf(old)
	}
	nb := &block{apps: slices.Clone(old.apps), chunks: old.chunks, stale: stale}
	nb.apps[sl.index] = rendered
	s.mu.Lock()
	s.blocks[sl.block] = nb
	s.count(prev, -1)
	s.count(rendered, +1)
	if !ok {
		s.apps++
	}
	s.mu.Unlock()
	s.changed(sl.block)
}

// staleOf returns a copy of b's stale families, to change.
func (s *Store) staleOf(b *block) []bool {
	stale := make([]bool, len(s.families))
	copy(stale, b.stale)
	return stale
}

// newSlot takes a free slot, adding a block when there is none. Call it
// with renderMu held.
func (s *Store) newSlot() slot {
	if len(s.free) == 0 {
		nb := &block{apps: make([]*rendering, blockApps), chunks: make([]chunk, len(s.families))}
		s.mu.Lock()
		s.blocks = append(s.blocks, nb)
		s.mu.Unlock()
		for i := blockApps - 1; i >= 0; i-- {
			s.free = append(s.free, slot{block: len(s.blocks) - 1, index: i})
		}
	}
	sl := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	return sl
}

// changed records that block b has stale chunks, and compresses those of
// the block that has waited longest when more than maxPending wait. Call
// it with renderMu held.
func (s *Store) changed(b int) {
	if i := slices.Index(s.pending, b); i >= 0 {
		s.pending = slices.Delete(s.pending, i, i+1)
	}
	s.pending = slices.Insert(s.pending, 0, b)
	for len(s.pending) > maxPending {
		last := s.pending[len(s.pending)-1]
		s.pending = s.pending[:len(s.pending)-1]
		s.compress(last)
	}
}

// compress compresses block b's stale chunks again and publishes them.
// Call it with renderMu held (not mu: a scrape goes on meanwhile).
func (s *Store) compress(b int) {
	old := s.blocks[b]
	if old.stale == nil {
		return
	}
	nb := &block{apps: old.apps, chunks: slices.Clone(old.chunks)}
	s.chunks.fw = flateWriters.Get().(*flate.Writer)
	for f, stale := range old.stale {
		if !stale {
			continue
		}
		s.chunks.begin()
		for _, app := range old.apps {
			if app != nil {
				s.chunks.write(app.family(f))
			}
		}
		nb.chunks[f] = s.chunks.end()
	}
	flateWriters.Put(s.chunks.fw)
	s.chunks.fw = nil
	s.mu.Lock()
	s.blocks[b] = nb
	s.mu.Unlock()
}

// Len returns the number of apps in the store.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.apps
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

// snapshot is what a scrape writes: the blocks and the filled counts of
// one moment.
type snapshot struct {
	blocks []*block
	filled []int
	apps   []*rendering // the blocks' apps, for write
}

// snapshot holds the lock only to copy the blocks' pointers, so a slow
// reader never blocks the tracker.
func (s *Store) snapshot() *snapshot {
	snap, _ := s.snapshots.Get().(*snapshot)
	if snap == nil {
		snap = new(snapshot)
	}
	s.mu.RLock()
	snap.blocks = append(snap.blocks[:0], s.blocks...)
	snap.filled = append(snap.filled[:0], s.filled...)
	s.mu.RUnlock()
	return snap
}

// release recycles snap for the next scrape.
func (s *Store) release(snap *snapshot) {
	clear(snap.blocks) // keep the slices, not what they point to
	clear(snap.apps)
	snap.apps = snap.apps[:0]
	s.snapshots.Put(snap)
}

// write writes every family with the given headers, uncompressed.
func (s *Store) write(w io.Writer, headers [][]byte) (int64, error) {
	snap := s.snapshot()
	defer s.release(snap)
	// One flat list of the apps (as before blocks), so that the loop
	// over them, once per family, reads nothing but their samples: going
	// by block instead measured up to ~20% more CPU, if noisily.
	for _, b := range snap.blocks {
		for _, app := range b.apps {
			if app != nil {
				snap.apps = append(snap.apps, app)
			}
		}
	}
	var n int64
	for f := range s.families {
		m, err := w.Write(headers[f])
		n += int64(m)
		if err != nil {
			return n, err
		}
		if snap.filled[f] == 0 {
			continue
		}
		for _, app := range snap.apps {
			samples := app.family(f)
			if len(samples) == 0 {
				continue
			}
			m, err := w.Write(samples)
			n += int64(m)
			if err != nil {
				return n, err
			}
		}
	}
	return n, nil
}

// writeGzip writes prefix (the self metrics) and every family in the text
// format, or in OpenMetrics with the closing "# EOF", as one gzip member,
// gunzipping to what WriteTo or WriteOpenMetrics would write after prefix.
// It compresses prefix and the stale chunks of the blocks that wait for
// compression as it goes. It returns the bytes written to w.
func (s *Store) writeGzip(w io.Writer, prefix []byte, openMetrics bool) (int64, error) {
	s.chunksOnce.Do(s.compressHeaders)
	headers := s.headerChunks
	if openMetrics {
		headers = s.omChunks
	}
	snap := s.snapshot()
	defer s.release(snap)
	z := &gzipStream{w: w}
	z.header()
	if len(prefix) > 0 {
		z.begin()
		z.write(prefix)
		z.end()
	}
	for f := range s.families {
		z.chunk(&headers[f])
		if snap.filled[f] == 0 {
			continue
		}
		for _, b := range snap.blocks {
			if !b.isStale(f) {
				z.chunk(&b.chunks[f])
				continue
			}
			z.begin()
			for _, app := range b.apps {
				if app != nil {
					z.write(app.family(f))
				}
			}
			z.end()
		}
		if z.err != nil {
			break
		}
	}
	if openMetrics {
		z.chunk(&s.eofChunk)
	}
	err := z.close()
	return z.n, err
}

// openMetricsEOF ends an OpenMetrics exposition.
const openMetricsEOF = "# EOF\n"

// compressHeaders makes the chunks of the families' headers and of
// OpenMetrics' "# EOF".
func (s *Store) compressHeaders() {
	s.headerChunks = make([]chunk, len(s.families))
	s.omChunks = make([]chunk, len(s.families))
	for f := range s.families {
		s.headerChunks[f] = compressChunk(s.headers[f])
		s.omChunks[f] = compressChunk(s.omHeaders[f])
	}
	s.eofChunk = compressChunk([]byte(openMetricsEOF))
}

// MetricsHandler serves the metrics of self (the daemon's own registry)
// followed by the store's, in OpenMetrics when the client asks for it (the
// only format that carries exemplars) and else in the Prometheus text
// format, gzip-compressed when the client accepts it.
type MetricsHandler struct {
	self   prometheus.Gatherer
	store  *Store
	logger *slog.Logger
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
	if acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		if _, err := h.store.writeGzip(w, selfText.Bytes(), openMetrics); err != nil {
			// The scraper went away; nothing to tell it.
			h.logger.Debug("write metrics", "err", err)
		}
		return
	}
	if _, err := w.Write(selfText.Bytes()); err != nil {
		h.logger.Debug("write metrics", "err", err)
		return
	}
	var werr error
	if openMetrics {
		if _, werr = h.store.WriteOpenMetrics(w); werr == nil {
			_, werr = io.WriteString(w, openMetricsEOF)
		}
	} else {
		_, werr = h.store.WriteTo(w)
	}
	if werr != nil {
		// The scraper went away; nothing to tell it.
		h.logger.Debug("write metrics", "err", werr)
	}
}

// acceptsGzip tells whether the request's Accept-Encoding lists gzip with a
// quality above 0 (RFC 9110, 12.5.3: "gzip;q=0" refuses it).
func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, params, _ := strings.Cut(part, ";")
		if !strings.EqualFold(strings.TrimSpace(enc), "gzip") {
			continue
		}
		for _, param := range strings.Split(params, ";") {
			name, value, _ := strings.Cut(param, "=")
			if strings.EqualFold(strings.TrimSpace(name), "q") {
				if q, err := strconv.ParseFloat(strings.TrimSpace(value), 64); err == nil && q <= 0 {
					return false
				}
			}
		}
		return true
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
