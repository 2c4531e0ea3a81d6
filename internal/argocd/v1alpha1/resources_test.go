package v1alpha1

import (
	"fmt"
	"slices"
	"testing"
)

// resourceList is n resources of an app with tuples distinct tuples
// (kind, wave and status vary; a hook and one to prune among them).
func resourceList(n, tuples int) []ResourceStatus {
	rs := make([]ResourceStatus, n)
	for i := range rs {
		t := i % tuples
		rs[i] = ResourceStatus{Group: "apps", Version: "v1", Kind: fmt.Sprintf("Kind%d", t%7), Namespace: "web", Name: fmt.Sprintf("res-%d", i),
			Status: SyncStatusCodeSynced, SyncWave: int64(t / 7), Hook: t == 3, RequiresPruning: t == 4}
		if t%5 == 0 {
			rs[i].Status = SyncStatusCodeOutOfSync
		}
	}
	return rs
}

// Packed, an app's resources read back the same, in the same order, for
// short lists, lists with more tuples than a linear search handles and
// the most tuples a packed list holds; copies share them; unpacking
// restores the list.
func TestPackResources(t *testing.T) {
	for _, c := range []struct{ n, tuples int }{{1, 1}, {50, 6}, {400, 40}, {600, maxPackedTuples}} {
		want := resourceList(c.n, c.tuples)
		st := ApplicationStatus{Resources: slices.Clone(want)}
		st.PackResources()
		if st.Resources != nil || st.packed == nil || len(st.packed.tuples) != min(c.n, c.tuples) {
			t.Fatalf("%d resources, %d tuples: not packed", c.n, c.tuples)
		}
		if got := slices.Collect(st.AllResources()); !slices.Equal(got, want) || st.ResourceCount() != c.n {
			t.Errorf("%d resources, %d tuples: read back %d (count %d), differ from the list", c.n, c.tuples, len(got), st.ResourceCount())
		}
		cp := st.DeepCopy()
		if got := slices.Collect(cp.AllResources()); !slices.Equal(got, want) {
			t.Errorf("%d resources: the copy reads %v", c.n, got)
		}
		cp.UnpackResources()
		if !slices.Equal(cp.Resources, want) || cp.packed != nil || st.packed == nil {
			t.Errorf("%d resources: unpacked %d, or the original lost its own", c.n, len(cp.Resources))
		}
		var first []ResourceStatus
		for r := range st.AllResources() {
			first = append(first, r)
			break
		}
		if len(first) != 1 || first[0] != want[0] {
			t.Errorf("stopping early read %v", first)
		}
	}
}

// A list with more tuples than a packed list holds stays as decoded; an
// empty list is left alone.
func TestPackResourcesKeepsVariedLists(t *testing.T) {
	want := resourceList(maxPackedTuples+1, maxPackedTuples+1)
	st := ApplicationStatus{Resources: slices.Clone(want)}
	st.PackResources()
	if st.packed != nil || !slices.Equal(st.Resources, want) || st.ResourceCount() != len(want) {
		t.Errorf("a list of %d tuples packed or changed", len(want))
	}
	var empty ApplicationStatus
	empty.PackResources()
	if empty.packed != nil || empty.ResourceCount() != 0 || slices.Collect(empty.AllResources()) != nil {
		t.Error("an empty list packed")
	}
}
