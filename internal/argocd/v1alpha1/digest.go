package v1alpha1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
)

// SourceDigest stands for one ApplicationSource where crowsnest only needs
// to know whether two sources are the same: the sources Argo CD compared
// the app with (status.sync.comparedTo) and those it last synced
// (status.history, the sync result). It is a hash of the source's JSON,
// every field included (Helm values and parameters, Kustomize images,
// plugin settings): Argo CD copies the spec's source into each of these
// places, and the API server (or argocd-server) encodes the copies alike,
// so the same source has the same JSON. The source itself is never kept:
// a digest is 8 bytes, a decoded source with its Helm values kilobytes.
//
// Encoded, a digest is the string "digest:<hex>", which decodes back to the
// same digest: a recording replays with the digests it was made with.
type SourceDigest struct{ sum uint64 }

// digestPrefix marks an encoded digest.
const digestPrefix = "digest:"

// IsZero reports whether the digest stands for no source (the field was
// absent or null).
func (d SourceDigest) IsZero() bool { return d.sum == 0 }

// String returns the digest in its encoded form, or "" if zero.
func (d SourceDigest) String() string {
	if d.IsZero() {
		return ""
	}
	return digestPrefix + strconv.FormatUint(d.sum, 16)
}

// DigestOf returns the digest of a source given as JSON, as decoding it
// would.
func DigestOf(source []byte) SourceDigest {
	var d SourceDigest
	_ = d.UnmarshalJSON(source)
	return d
}

// UnmarshalJSON hashes a source object (or a list of them, for
// SourceDigests), or decodes an encoded digest.
func (d *SourceDigest) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0 || bytes.Equal(b, []byte("null")):
		d.sum = 0
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		hex, ok := bytes.CutPrefix([]byte(s), []byte(digestPrefix))
		if !ok {
			return fmt.Errorf("source digest %q: want an object or %q and hex digits", s, digestPrefix)
		}
		sum, err := strconv.ParseUint(string(hex), 16, 64)
		if err != nil {
			return fmt.Errorf("source digest %q: %w", s, err)
		}
		d.sum = sum
		return nil
	case b[0] != '{' && b[0] != '[':
		return fmt.Errorf("source: want an object (or a list of them), got %.20s", b)
	}
	h := fnv.New64a()
	h.Write(b)
	d.sum = h.Sum64() | 1 // never zero: zero is no source
	return nil
}

// MarshalJSON encodes the digest as its string form (null if zero).
func (d SourceDigest) MarshalJSON() ([]byte, error) {
	if d.IsZero() {
		return []byte("null"), nil
	}
	return strconv.AppendQuote(nil, d.String()), nil
}

// SourceDigests stands for a multi-source app's sources, in order: one
// digest of their JSON list, since crowsnest only asks whether two lists
// are the same (8 bytes, where a slice of digests would take 24 for its
// header alone, in every history entry).
type SourceDigests struct{ SourceDigest }

// ComparedTo is what Argo CD compared the app's live state with, as far as
// crowsnest reads it: the digests of the sources (the spec's, when Argo CD
// compared).
type ComparedTo struct {
	Source  SourceDigest  `json:"source,omitzero"`
	Sources SourceDigests `json:"sources,omitzero"`
}
