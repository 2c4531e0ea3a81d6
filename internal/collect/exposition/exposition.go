package exposition

import (
	"math"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Metric types as written in the text exposition format.
const (
	typeGauge     = "gauge"
	typeCounter   = "counter"
	typeHistogram = "histogram"
)

// MaxLabelValueBytes caps every label value crowsnest renders. Argo CD's
// CRD sets no maxLength: anyone who may create an Application could put a
// 50 MB spec.project on some 25 series of it. Kubernetes names are at most
// 253 bytes and repository URLs rarely pass 200, so 1 KiB cuts nothing real.
const MaxLabelValueBytes = 1024

// truncatedMark ends a label value cut to MaxLabelValueBytes.
const truncatedMark = "...(truncated)"

// labelValue makes value safe for a label: valid UTF-8 (a bad byte would
// fail the whole scrape; it becomes U+FFFD) and at most MaxLabelValueBytes,
// cut at a character boundary and marked.
func labelValue(value string) string {
	if !utf8.ValidString(value) {
		value = strings.ToValidUTF8(value, "\uFFFD")
	}
	if len(value) <= MaxLabelValueBytes {
		return value
	}
	cut := MaxLabelValueBytes - len(truncatedMark)
	for cut > 0 && !utf8.RuneStart(value[cut]) {
		cut--
	}
	return value[:cut] + truncatedMark
}

// appendLabel appends `name="value"` to b, with a leading comma unless b
// ends in '{'. The value goes through labelValue.
func appendLabel(b []byte, name, value string) []byte {
	if len(b) > 0 && b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	value = labelValue(value)
	b = append(b, name...)
	b = append(b, '=', '"')
	for i := 0; i < len(value); i++ {
		switch c := value[i]; c {
		case '\\':
			b = append(b, '\\', '\\')
		case '\n':
			b = append(b, '\\', 'n')
		case '"':
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// appendValue appends a sample value the way the Prometheus text format and
// client_golang spell it.
func appendValue(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, "NaN"...)
	case math.IsInf(v, +1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}

// escapeHelp escapes a HELP text for the text exposition format.
func escapeHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`).Replace(s)
}

// escapeOpenMetricsHelp escapes a HELP text for OpenMetrics, where HELP is
// an escaped string like a label value: a double quote needs a backslash
// too, or an OpenMetrics parser rejects the whole scrape.
func escapeOpenMetricsHelp(s string) string {
	return strings.NewReplacer(`\`, `\\`, "\n", `\n`, `"`, `\"`).Replace(s)
}
