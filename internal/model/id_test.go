package model

import (
	"testing"
	"time"
)

func TestOperationID(t *testing.T) {
	start := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	id := OperationID("6f1c2a3e-0000-4000-8000-000000000001", start)
	if len(id) != 32 || id == "00000000000000000000000000000000" {
		t.Fatalf("OperationID = %q, want 32 hex digits, not all zero", id)
	}
	// Same operation, seen by another replica or after a restart, with the
	// sub-second part Argo CD does not keep: the same id.
	if again := OperationID("6f1c2a3e-0000-4000-8000-000000000001", start.Add(400*time.Millisecond)); again != id {
		t.Errorf("same operation gave %q and %q", id, again)
	}
	for _, other := range []string{
		OperationID("6f1c2a3e-0000-4000-8000-000000000001", start.Add(time.Second)),
		OperationID("6f1c2a3e-0000-4000-8000-000000000002", start),
	} {
		if other == id {
			t.Errorf("different operations share trace id %s", id)
		}
	}
}
