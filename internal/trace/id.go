// Package trace holds what crowsnest's traces of sync operations are keyed
// by: a trace id that every crowsnest replica, and every restart, derives
// the same way from the operation itself.
package trace

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
