package model

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"time"
)

// OperationID returns the W3C trace id (32 hex digits) of the sync
// operation of the Application with uid that started at startedAt. Argo CD
// keeps startedAt in whole seconds, so that is the precision used.
func OperationID(uid string, startedAt time.Time) string {
	sum := sha256.Sum256([]byte(uid + "/" + strconv.FormatInt(startedAt.Unix(), 10)))
	return hex.EncodeToString(sum[:16])
}

// OperationSeqID is OperationID for the seq-th further operation that
// started in the same second as an earlier one of the app (Argo CD keeps
// whole seconds): seq 0 is OperationID itself.
func OperationSeqID(uid string, startedAt time.Time, seq int) string {
	if seq == 0 {
		return OperationID(uid, startedAt)
	}
	sum := sha256.Sum256([]byte(uid + "/" + strconv.FormatInt(startedAt.Unix(), 10) + "/" + strconv.Itoa(seq)))
	return hex.EncodeToString(sum[:16])
}

// SpanID returns the span id (16 hex digits) of the span at path within the
// trace traceID. Paths: RootPath, PhasePath(phase), WavePath(phase, wave).
func SpanID(traceID, path string) string {
	sum := sha256.Sum256([]byte(traceID + "/" + path))
	return hex.EncodeToString(sum[:8])
}

// RootPath is the path of an operation's root span.
const RootPath = "sync"

// PhasePath is the path of the span of a sync phase (PreSync, Sync, ...).
func PhasePath(phase string) string { return "phase/" + phase }

// WavePath is the path of the span of a wave within a sync phase.
func WavePath(phase string, wave int64) string {
	return "wave/" + phase + "/" + strconv.FormatInt(wave, 10)
}
