package v1alpha1

import (
	"fmt"
	"slices"
	"testing"
)

// resourceList is n resources of an app with values distinct kinds and
// as many waves, two namespaces, statuses varying, a hook and one to
// prune among them.
func resourceList(n, values int) []ResourceStatus {
	rs := make([]ResourceStatus, n)
	for i := range rs {
		t := i % values
		rs[i] = ResourceStatus{Group: "apps", Version: "v1", Kind: fmt.Sprintf("Kind%d", t), Namespace: []string{"web", "shop"}[i%2], Name: fmt.Sprintf("res-%d", i),
			Status: SyncStatusCodeSynced, SyncWave: int64(t*3 - 7), Hook: i == 3, RequiresPruning: i == 4}
		if i%5 == 0 {
			rs[i].Status = SyncStatusCodeOutOfSync
		}
	}
	return rs
}

// Packed, an app's resources read back the same, in the same order, for
// short lists, lists of many kinds and waves, and
// the most values a packed table holds; copies share them; unpacking
// restores the list.
func TestPackResources(t *testing.T) {
	for _, c := range []struct{ n, values int }{{1, 1}, {50, 6}, {400, 40}, {600, maxPackedValues}} {
		want := resourceList(c.n, c.values)
		st := ApplicationStatus{Resources: slices.Clone(want)}
		st.PackResources()
		if st.Resources != nil || st.packed == nil || len(st.packed.kinds) != min(c.n, c.values) || len(st.packed.waves) != min(c.n, c.values) {
			t.Fatalf("%d resources, %d values: not packed", c.n, c.values)
		}
		if got := slices.Collect(st.AllResources()); !slices.Equal(got, want) || st.ResourceCount() != c.n {
			t.Errorf("%d resources, %d values: read back %d (count %d), differ from the list", c.n, c.values, len(got), st.ResourceCount())
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

// A list with more kinds or waves than a packed table holds stays as
// decoded; an empty list is left alone.
func TestPackResourcesKeepsVariedLists(t *testing.T) {
	want := resourceList(maxPackedValues+1, maxPackedValues+1)
	st := ApplicationStatus{Resources: slices.Clone(want)}
	st.PackResources()
	if st.packed != nil || !slices.Equal(st.Resources, want) || st.ResourceCount() != len(want) {
		t.Errorf("a list of %d kinds and waves packed or changed", len(want))
	}
	var empty ApplicationStatus
	empty.PackResources()
	if empty.packed != nil || empty.ResourceCount() != 0 || slices.Collect(empty.AllResources()) != nil {
		t.Error("an empty list packed")
	}
}
