package exposition

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/crc32"
	"io"
	"sync"
)

// A gzip scrape is one gzip member (RFC 1952) whose deflate data (RFC
// 1951) is a concatenation of chunks compressed ahead of time. Each chunk
// is compressed on its own, by a reset flate writer, so it refers to
// nothing before it, and it ends with a sync flush, so it ends on a byte
// boundary with no final block: chunks concatenate into valid deflate data
// in any order, and a scrape closes it with an empty final block. The
// member's trailer needs the CRC-32 and the length of the whole
// uncompressed stream: each chunk keeps its own CRC and the operator that
// shifts a CRC over its length, so a scrape combines them (one
// multiplication modulo the CRC polynomial per chunk, as zlib's
// crc32_combine) without reading the uncompressed bytes.
//
// One member rather than a member per chunk, which Go's gzip reader (and
// so Prometheus) would read too: curl --compressed and other zlib-based
// clients stop at the end of the first member, and a member costs 18 bytes
// of header and trailer more than a chunk.

// chunk is deflate data compressed on its own and ended by a sync flush.
// The zero chunk stands for no data.
type chunk struct {
	data  []byte // compressed
	crc   uint32 // CRC-32 (IEEE) of the uncompressed bytes
	shift uint32 // x^(8·size) modulo the CRC polynomial: crcCombine's operator
	size  uint32 // length of the uncompressed bytes
}

// flateWriters recycles flate writers (800 kB each at BestSpeed) between
// renderings and scrapes.
var flateWriters = sync.Pool{New: func() any {
	// BestSpeed: the exposition compresses ~16x even so in chunks of a
	// block of apps, and higher levels cost 2-3x the CPU for ~8% less.
	w, _ := flate.NewWriter(nil, flate.BestSpeed)
	return w
}}

// chunkWriter compresses chunks into memory. It is not safe for concurrent
// use.
type chunkWriter struct {
	fw        *flate.Writer
	buf       bytes.Buffer
	crc, size uint32
}

// begin starts a chunk.
func (c *chunkWriter) begin() {
	c.buf.Reset()
	c.fw.Reset(&c.buf)
	c.crc, c.size = 0, 0
}

// write adds p to the chunk.
func (c *chunkWriter) write(p []byte) {
	if len(p) == 0 {
		return
	}
	_, _ = c.fw.Write(p) // a bytes.Buffer does not fail
	c.crc = crc32.Update(c.crc, crc32.IEEETable, p)
	c.size += uint32(len(p))
}

// end returns the chunk written since begin, in memory of its own.
func (c *chunkWriter) end() chunk {
	if c.size == 0 {
		return chunk{}
	}
	_ = c.fw.Flush()
	return chunk{data: bytes.Clone(c.buf.Bytes()), crc: c.crc, shift: crcShift(c.size), size: c.size}
}

// compressChunk returns p as one chunk.
func compressChunk(p []byte) chunk {
	c := chunkWriter{fw: flateWriters.Get().(*flate.Writer)}
	defer flateWriters.Put(c.fw)
	c.begin()
	c.write(p)
	return c.end()
}

// gzipHeader starts a gzip member: no name, no time, the OS unknown, and
// XFL 4 (fastest compression), as Go's gzip.Writer writes at BestSpeed.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 4, 0xff}

// finalBlock is an empty final deflate block with fixed Huffman codes.
var finalBlock = []byte{0x03, 0x00}

// gzipStream writes one gzip member made of chunks: stored ones and ones
// it compresses as it goes.
type gzipStream struct {
	w    io.Writer
	fw   *flate.Writer // compresses the on-the-fly chunks; from flateWriters, nil until the first
	crc  uint32        // of the uncompressed bytes so far
	size uint32        // of the uncompressed bytes so far, modulo 2^32
	n    int64         // bytes written to w
	err  error         // the first error of w
}

// Write implements io.Writer for fw: it writes to w and counts.
func (z *gzipStream) Write(p []byte) (int, error) {
	if z.err != nil {
		return 0, z.err
	}
	m, err := z.w.Write(p)
	z.n += int64(m)
	z.err = err
	return m, err
}

// header writes the gzip header.
func (z *gzipStream) header() { _, _ = z.Write(gzipHeader) }

// chunk writes a stored chunk.
func (z *gzipStream) chunk(c *chunk) {
	if c.size == 0 || z.err != nil {
		return
	}
	_, _ = z.Write(c.data)
	z.crc = crcCombine(z.crc, c.crc, c.shift)
	z.size += c.size
}

// begin starts a chunk compressed on the fly.
func (z *gzipStream) begin() {
	if z.fw == nil {
		z.fw = flateWriters.Get().(*flate.Writer)
	}
	z.fw.Reset(z)
}

// write adds p to the chunk begun.
func (z *gzipStream) write(p []byte) {
	if len(p) == 0 || z.err != nil {
		return
	}
	_, _ = z.fw.Write(p)
	z.crc = crc32.Update(z.crc, crc32.IEEETable, p)
	z.size += uint32(len(p))
}

// end ends the chunk begun.
func (z *gzipStream) end() {
	if z.err == nil {
		_ = z.fw.Flush()
	}
}

// close ends the deflate data and writes the gzip trailer.
func (z *gzipStream) close() error {
	if z.fw != nil {
		flateWriters.Put(z.fw)
		z.fw = nil
	}
	var trailer [10]byte
	copy(trailer[:], finalBlock)
	binary.LittleEndian.PutUint32(trailer[2:], z.crc)
	binary.LittleEndian.PutUint32(trailer[6:], z.size)
	_, _ = z.Write(trailer[:])
	return z.err
}

// crcPoly is the CRC-32 (IEEE) polynomial, reflected.
const crcPoly = 0xedb88320

// x2n[k] is x^(2^k) modulo crcPoly.
var x2n = func() (t [32]uint32) {
	p := uint32(1) << 30 // x^1
	for k := range t {
		t[k] = p
		p = multModP(p, p)
	}
	return t
}()

// multModP returns a(x)·b(x) modulo crcPoly, in the reflected bit order of
// the CRC (bit 31 is x^0), as zlib's multmodp, but four bits of a at a time
// and without branches (a scrape calls it once per chunk): Horner's rule
// over a's nibbles from the highest degree, with the products of b by
// every polynomial of degree < 4 tabulated first.
func multModP(a, b uint32) uint32 {
	var t [16]uint32 // t[n]: b times the nibble n (bit 3: x^0 ... bit 0: x^3)
	t[8] = b
	t[4] = timesX(t[8])
	t[2] = timesX(t[4])
	t[1] = timesX(t[2])
	for n := 3; n < 16; n++ {
		if n&(n-1) != 0 {
			t[n] = t[n&(n-1)] ^ t[n&-n]
		}
	}
	var p uint32
	for shift := 0; shift <= 28; shift += 4 { // x^28..x^31 first
		p = p>>4 ^ timesX4[p&0xf] ^ t[a>>shift&0xf]
	}
	return p
}

// timesX returns v(x)·x modulo crcPoly.
func timesX(v uint32) uint32 { return v>>1 ^ crcPoly&-(v&1) }

// timesX4[n] is what the low nibble n of v adds to v(x)·x^4 modulo crcPoly
// beside v>>4.
var timesX4 = func() (t [16]uint32) {
	for n := range t {
		v := uint32(n)
		for range 4 {
			v = timesX(v)
		}
		t[n] = v
	}
	return t
}()

// crcShift returns x^(8·n) modulo crcPoly: the operator crcCombine shifts a
// CRC with over n bytes.
func crcShift(n uint32) uint32 {
	p := uint32(1) << 31 // x^0
	for k := 3; n != 0; n, k = n>>1, k+1 {
		if n&1 != 0 {
			p = multModP(x2n[k&31], p)
		}
	}
	return p
}

// crcCombine returns the CRC-32 of a followed by b from the CRC-32 of a,
// that of b and crcShift(len(b)).
func crcCombine(crcA, crcB, shiftB uint32) uint32 {
	return multModP(shiftB, crcA) ^ crcB
}
