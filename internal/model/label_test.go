package model

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// TestLabelValue: values are cut to MaxLabelValueBytes on a rune
// boundary and marked, and made valid UTF-8.
func TestLabelValue(t *testing.T) {
	long := strings.Repeat("é", 2000) // 4,000 bytes of two-byte runes
	for _, tc := range []struct {
		desc, in string
		check    func(string) bool
	}{
		{"short values pass as they are", "prod-backend", func(s string) bool { return s == "prod-backend" }},
		{"a value at the cap passes", strings.Repeat("a", MaxLabelValueBytes), func(s string) bool { return len(s) == MaxLabelValueBytes && !strings.HasSuffix(s, TruncatedMark) }},
		{"a long value is cut on a rune boundary and marked", long, func(s string) bool {
			return len(s) <= MaxLabelValueBytes && strings.HasSuffix(s, TruncatedMark) && utf8.ValidString(s)
		}},
		{"invalid UTF-8 is replaced", "web\xff\xfe", func(s string) bool { return s == "web\uFFFD" }},
	} {
		if got := LabelValue(tc.in); !tc.check(got) {
			t.Errorf("%s: LabelValue gave %q (%d bytes)", tc.desc, got[:min(len(got), 60)], len(got))
		}
	}
}
