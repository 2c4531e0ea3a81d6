package exposition

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/crowsnest/crowsnest/internal/model"
)

// crcCombine joins CRCs as if the bytes had been checksummed in one go.
func TestCRCCombine(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 3, 7, 8, 100, 4096, 65537, 1 << 20} {
		a, b := make([]byte, rng.IntN(300)), make([]byte, n)
		for i := range a {
			a[i] = byte(rng.Uint32())
		}
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		want := crc32.ChecksumIEEE(append(a[:len(a):len(a)], b...))
		got := crcCombine(crc32.ChecksumIEEE(a), crc32.ChecksumIEEE(b), crcShift(uint32(len(b))))
		if got != want {
			t.Errorf("len(a)=%d len(b)=%d: crcCombine = %08x, want %08x", len(a), n, got, want)
		}
	}
}

// Chunks written in any order, some stored and some compressed on the fly,
// make one gzip member that any gzip reader reads back, not only one that
// reads several members (curl --compressed does not).
func TestGzipStream(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var parts [][]byte
	for i := range 50 {
		p := bytes.Repeat([]byte("crowsnest_app_info{name=\"app-"), 1+rng.IntN(40))
		p = append(p, byte('a'+i%26), '\n')
		if i%7 == 0 {
			p = p[:0] // empty parts write nothing
		}
		parts = append(parts, p)
	}
	var want, stream bytes.Buffer
	z := &gzipStream{w: &stream}
	z.header()
	for i, p := range parts {
		want.Write(p)
		if i%3 == 0 {
			z.begin()
			z.write(p)
			z.end()
			continue
		}
		c := compressChunk(p)
		z.chunk(&c)
	}
	if err := z.close(); err != nil {
		t.Fatal(err)
	}
	if z.n != int64(stream.Len()) {
		t.Errorf("counted %d bytes, wrote %d", z.n, stream.Len())
	}
	br := bytes.NewReader(stream.Bytes())
	zr, err := gzip.NewReader(br)
	if err != nil {
		t.Fatal(err)
	}
	zr.Multistream(false)
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("gunzipped %d bytes, want the %d written", len(got), want.Len())
	}
	if br.Len() != 0 {
		t.Errorf("%d bytes after the first gzip member", br.Len())
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                            false,
		"gzip":                        true,
		"GZIP":                        true,
		"deflate, gzip;q=1.0":         true,
		"gzip;q=0.5, identity":        true,
		"gzip ; q=0.001":              true,
		"gzip;q=0":                    false,
		"gzip; q=0.000":               false,
		"deflate, gzip;q=0, identity": false,
		"br, deflate":                 false,
		"x-gzip":                      false,
	} {
		req := httptest.NewRequest("GET", "/metrics", nil)
		req.Header.Set("Accept-Encoding", header)
		if got := acceptsGzip(req); got != want {
			t.Errorf("Accept-Encoding %q: acceptsGzip = %v, want %v", header, got, want)
		}
	}
}

// The store keeps every block compressed but the maxPending changed last,
// through additions, changes and deletions, and an update that changes no
// byte publishes nothing.
func TestStoreCompressesBlocks(t *testing.T) {
	s := NewStore(false)
	view := func(i int, env string) *model.AppView {
		v := prodView("")
		v.App = v.App.DeepCopy()
		v.App.Name = fmt.Sprintf("app-%03d", i)
		v.Env = env
		return v
	}
	check := func(stage string, wantApps int) {
		t.Helper()
		s.mu.RLock()
		defer s.mu.RUnlock()
		stale, apps := 0, 0
		for _, b := range s.blocks {
			for _, app := range b.apps {
				if app != nil {
					apps++
				}
			}
			if slices.Contains(b.stale, true) {
				stale++
				continue
			}
			info := b.chunks[0] // crowsnest_app_info: every app has it
			if empty := !slices.ContainsFunc(b.apps, func(a *rendering) bool { return a != nil }); (info.size == 0) != empty {
				t.Errorf("%s: a block's crowsnest_app_info chunk has %d bytes", stage, info.size)
			}
		}
		if stale > maxPending || stale == 0 {
			t.Errorf("%s: %d blocks with stale chunks, want 1 to %d", stage, stale, maxPending)
		}
		if apps != wantApps || s.apps != wantApps {
			t.Errorf("%s: %d apps in blocks, counted %d, want %d", stage, apps, s.apps, wantApps)
		}
	}
	const n = 7*blockApps + 5
	for i := range n {
		s.SetApp(view(i, "dev"))
	}
	check("added", n)

	for i := 0; i < n; i += 5 {
		s.SetApp(view(i, "prod"))
	}
	check("changed", n)

	s.mu.RLock()
	before := s.blocks[0]
	s.mu.RUnlock()
	s.SetApp(view(0, "prod"))
	s.mu.RLock()
	if s.blocks[0] != before {
		t.Error("an update that changed no byte published a block")
	}
	s.mu.RUnlock()

	deleted := 0
	for i := 0; i < n; i += 3 {
		s.DeleteApp(model.Key(view(i, "").App.Namespace, view(i, "").App.Name))
		deleted++
	}
	check("deleted", n-deleted)
	for i := n; i < n+deleted; i++ {
		s.SetApp(view(i, "stage"))
	}
	check("added again", n)
	if len(s.blocks) != (n+blockApps-1)/blockApps {
		t.Errorf("%d blocks for %d apps: freed slots were not reused", len(s.blocks), n)
	}

	// A scraper that goes away mid-scrape gets an error, and the next
	// scrape is whole all the same (its flate writer was reused).
	for _, cut := range []int{5, 100, 3000} {
		if _, err := s.writeGzip(&failingWriter{left: cut}, []byte("self 1\n"), false); err == nil {
			t.Errorf("a write that failed after %d bytes returned no error", cut)
		}
	}
	var identity, stream bytes.Buffer
	identity.WriteString("self 1\n")
	if _, err := s.WriteTo(&identity); err != nil {
		t.Fatal(err)
	}
	if _, err := s.writeGzip(&stream, []byte("self 1\n"), false); err != nil {
		t.Fatal(err)
	}
	zr, err := gzip.NewReader(&stream)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAll(zr); err != nil || !bytes.Equal(got, identity.Bytes()) {
		t.Errorf("gunzipped %d bytes (%v), want the %d of the identity scrape", len(got), err, identity.Len())
	}
}

// failingWriter fails once left bytes were written.
type failingWriter struct{ left int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.left {
		n := w.left
		w.left = 0
		return n, errors.New("the scraper went away")
	}
	w.left -= len(p)
	return len(p), nil
}

// multModPBitwise is zlib's multmodp, bit by bit.
func multModPBitwise(a, b uint32) uint32 {
	var p uint32
	for m := uint32(1) << 31; a != 0; m >>= 1 {
		if a&m != 0 {
			p ^= b
			a &^= m
		}
		if b&1 != 0 {
			b = b>>1 ^ crcPoly
		} else {
			b >>= 1
		}
	}
	return p
}

func TestMultModP(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	cases := [][2]uint32{{0, 0}, {0, 1}, {1 << 31, 0xdeadbeef}, {0xffffffff, 0xffffffff}, {1, 1}}
	for range 10000 {
		cases = append(cases, [2]uint32{rng.Uint32(), rng.Uint32()})
	}
	for _, c := range cases {
		if got, want := multModP(c[0], c[1]), multModPBitwise(c[0], c[1]); got != want {
			t.Fatalf("multModP(%08x, %08x) = %08x, want %08x", c[0], c[1], got, want)
		}
	}
}

// BenchmarkMultModP is the cost per chunk of a gzip scrape's CRC.
func BenchmarkMultModP(b *testing.B) {
	a, c := crcShift(12345), uint32(0x12345678)
	for b.Loop() {
		c = multModP(a, c)
	}
	b.StopTimer()
	if c == 0 {
		b.Log(c)
	}
}
