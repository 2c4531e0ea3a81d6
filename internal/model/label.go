package model

import (
	"strings"
	"unicode/utf8"
)

// MaxLabelValueBytes caps every label value crowsnest renders. Argo CD's
// CRD sets no maxLength: anyone who may create an Application could put a
// 50 MB spec.project on some 25 series of it. Kubernetes names are at most
// 253 bytes and repository URLs rarely pass 200, so 1 KiB cuts nothing real.
const MaxLabelValueBytes = 1024

// TruncatedMark ends a label value cut to MaxLabelValueBytes.
const TruncatedMark = "...(truncated)"

// LabelValue makes value safe for a label: valid UTF-8 (a bad byte would
// fail a whole scrape, or panic client_golang's WithLabelValues; it becomes
// U+FFFD) and at most MaxLabelValueBytes, cut at a character boundary and
// marked.
func LabelValue(value string) string {
	if !utf8.ValidString(value) {
		value = strings.ToValidUTF8(value, "\uFFFD")
	}
	if len(value) <= MaxLabelValueBytes {
		return value
	}
	cut := MaxLabelValueBytes - len(TruncatedMark)
	for cut > 0 && !utf8.RuneStart(value[cut]) {
		cut--
	}
	return value[:cut] + TruncatedMark
}
