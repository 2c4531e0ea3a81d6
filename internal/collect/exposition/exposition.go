// Package exposition renders what the tracker hands its subscribers as
// Prometheus metrics: the per-app families (Store, pre-rendered per app and
// served by NewMetricsHandler without taking the tracker's lock), the
// aggregated histograms and counters (Durations, DeploymentCounters), the
// promotion groups, the ApplicationSet rollouts and the wave delay. It
// imports no source and no tracker: its input is internal/model's values.
package exposition

import (
	"math"
	"strconv"
	"strings"

	"github.com/crowsnest/crowsnest/internal/model"
)

// Metric types as written in the text exposition format.
const (
	typeGauge     = "gauge"
	typeCounter   = "counter"
	typeHistogram = "histogram"
)

// appendLabel appends `name="value"` to b, with a leading comma unless b
// ends in '{'. The value goes through model.LabelValue.
func appendLabel(b []byte, name, value string) []byte {
	if len(b) > 0 && b[len(b)-1] != '{' {
		b = append(b, ',')
	}
	value = model.LabelValue(value)
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
