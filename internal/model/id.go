package model

import (
	"crypto/sha256"
	"encoding/hex"
	"math"
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
	return "wave/" + phase + "/" + WaveLabel(wave)
}

// AttemptPath is the path of the span of an operation's attempt: Argo CD's
// retries run the operation again, attempt 1 being the first retry. An
// operation that never retried has no attempt spans.
func AttemptPath(attempt int64) string { return "attempt/" + strconv.FormatInt(attempt, 10) }

// BackoffPath is the path of the span of the wait before attempt.
func BackoffPath(attempt int64) string { return "backoff/" + strconv.FormatInt(attempt, 10) }

// AttemptPhasePath is PhasePath within attempt; attempt 0's is PhasePath,
// so an operation that never retried keeps the same span ids.
func AttemptPhasePath(attempt int64, phase string) string {
	if attempt == 0 {
		return PhasePath(phase)
	}
	return AttemptPath(attempt) + "/" + PhasePath(phase)
}

// AttemptWavePath is WavePath within attempt (attempt 0's is WavePath).
func AttemptWavePath(attempt int64, phase string, wave int64) string {
	if attempt == 0 {
		return WavePath(phase, wave)
	}
	return AttemptPath(attempt) + "/" + WavePath(phase, wave)
}

// UnknownWave stands for a wave crowsnest cannot tell: a hook or a pruned
// resource whose live object it never saw (the wave is in the object's
// annotations, not in the Application).
const UnknownWave int64 = math.MinInt64

// WaveLabel is wave as a label value: its number, or "unknown".
func WaveLabel(wave int64) string {
	if wave == UnknownWave {
		return "unknown"
	}
	return strconv.FormatInt(wave, 10)
}
