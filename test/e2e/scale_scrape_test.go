//go:build e2e

package e2e

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// scrapeEncoding is one way Prometheus asks for /metrics.
type scrapeEncoding struct {
	name, accept string
	gzip         bool
	// contentType is what the answer's Content-Type must start with.
	contentType string
}

// scrapeEncodings are the four a Prometheus server may ask for: the text
// format or OpenMetrics (what it asks for first when exemplars or native
// histograms are on, and with scrape_protocols), each plain or gzipped
// (Prometheus always sends Accept-Encoding: gzip).
var scrapeEncodings = []scrapeEncoding{
	{"identity", "text/plain;version=0.0.4", false, "text/plain"},
	{"gzip", "text/plain;version=0.0.4", true, "text/plain"},
	{"OpenMetrics", "application/openmetrics-text;version=1.0.0", false, "application/openmetrics-text"},
	{"OpenMetrics+gzip", "application/openmetrics-text;version=1.0.0", true, "application/openmetrics-text"},
}

// encodingResult is the cost of scrapes in one encoding.
type encodingResult struct {
	name                string
	bytes               int           // on the wire, of the last scrape
	median, fastest     time.Duration // request sent to last byte read
	slowest             time.Duration
	firstByte           time.Duration // median time to the first byte of the body
	cpu                 float64       // crowsnest's CPU seconds per scrape (mean; 10 ms ticks)
	decodedBytes, lines int           // the decoded body of the last scrape (checked once per encoding)
}

// measureEncodings scrapes n times in each encoding, one scrape at a
// time, and checks that the last body of each decodes to every app's sync
// status.
func measureEncodings(url string, pid, apps, n int) ([]encodingResult, error) {
	// DisableCompression: the transport neither asks for gzip nor decodes
	// it, so the body read is what went over the wire.
	tr := &http.Transport{DisableCompression: true}
	client := &http.Client{Transport: tr, Timeout: 2 * time.Minute}
	defer tr.CloseIdleConnections()
	var out []encodingResult
	for _, enc := range scrapeEncodings {
		res := encodingResult{name: enc.name}
		var times, first []time.Duration
		var body []byte
		cpu0 := procCPU(pid)
		for i := range n {
			keep := i == n-1
			took, ttfb, b, size, err := timedScrape(client, url, enc, keep)
			if err != nil {
				return out, fmt.Errorf("%s scrape: %w", enc.name, err)
			}
			times, first = append(times, took), append(first, ttfb)
			res.bytes = size
			if keep {
				body = b
			}
		}
		res.cpu = (procCPU(pid) - cpu0) / float64(n)
		res.median, res.fastest, res.slowest = percentile(times, 50), percentile(times, 0), percentile(times, 100)
		res.firstByte = percentile(first, 50)
		decoded, lines, synced, err := decodeScrape(body, enc.gzip)
		if err != nil {
			return out, fmt.Errorf("%s scrape: %w", enc.name, err)
		}
		if synced != apps {
			return out, fmt.Errorf("%s scrape: %d apps with a sync status, want %d", enc.name, synced, apps)
		}
		res.decodedBytes, res.lines = decoded, lines
		out = append(out, res)
	}
	return out, nil
}

// timedScrape fetches /metrics once in enc and returns how long it took to
// the last byte and to the first, and the body if keep is set.
func timedScrape(client *http.Client, url string, enc scrapeEncoding, keep bool) (took, ttfb time.Duration, body []byte, size int, err error) {
	req, err := http.NewRequest(http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return 0, 0, nil, 0, err
	}
	req.Header.Set("Accept", enc.accept)
	if enc.gzip {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, 0, nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, 0, nil, 0, fmt.Errorf("%s", resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, enc.contentType) {
		return 0, 0, nil, 0, fmt.Errorf("Content-Type %q, want %s", ct, enc.contentType)
	}
	if got := resp.Header.Get("Content-Encoding") == "gzip"; got != enc.gzip {
		return 0, 0, nil, 0, fmt.Errorf("Content-Encoding %q (asked for gzip: %v)", resp.Header.Get("Content-Encoding"), enc.gzip)
	}
	var one [1]byte
	n, err := io.ReadFull(resp.Body, one[:])
	ttfb = time.Since(start)
	if err != nil {
		return 0, 0, nil, 0, err
	}
	var w io.Writer = io.Discard
	var buf bytes.Buffer
	if keep {
		buf.Write(one[:n])
		w = &buf
	}
	rest, err := io.Copy(w, resp.Body)
	took = time.Since(start)
	if err != nil {
		return 0, 0, nil, 0, err
	}
	if keep {
		body = buf.Bytes()
	}
	return took, ttfb, body, n + int(rest), nil
}

// decodeScrape decodes a scrape body (gzip: with Go's reader, which reads
// concatenated members as one stream) and counts its bytes, its lines and
// the apps with a sync status.
func decodeScrape(body []byte, gzipped bool) (decoded, lines, apps int, err error) {
	var r io.Reader = bytes.NewReader(body)
	if gzipped {
		gz, err := gzip.NewReader(r)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("gzip: %w", err)
		}
		defer gz.Close()
		r = gz
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Text()
		decoded += len(line) + 1
		lines++
		if strings.HasPrefix(line, "crowsnest_app_sync_status{") && (strings.HasSuffix(line, "} 1") || strings.HasSuffix(line, "} 1.0")) {
			apps++
		}
	}
	if err := sc.Err(); err != nil {
		return decoded, lines, apps, fmt.Errorf("decode: %w", err)
	}
	return decoded, lines, apps, nil
}
