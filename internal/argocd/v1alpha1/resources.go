package v1alpha1

import (
	"iter"
	"slices"
	"strings"
)

// PackedResources is an app's status.resources in well under half the
// memory of the decoded list. An app's resources have a few dozen kinds at
// most, one or two namespaces, two or three sync statuses and a few waves:
// each distinct value is kept once in a table of its own, a resource is a
// byte-sized index into each table and a byte of flags, and the names are
// one string with an end offset each. The decoded list of 50 resources
// takes 7.7 KB (a 112-byte element each, the names in strings of their own),
// packed 2-3.5 KB (BenchmarkMemoryPerDecodedApp). It is immutable once
// built: copies of the app share it.
type PackedResources struct {
	kinds      []resourceKind
	namespaces []string
	statuses   []SyncStatusCode
	waves      []int64
	resources  []packedResource
	ends       []uint32 // resource i's name is names[ends[i-1]:ends[i]]
	names      string
}

// resourceKind is a resource's group, version and kind.
type resourceKind struct{ group, version, kind string }

// packedResource is a resource's indexes into the tables and its flags.
type packedResource struct{ kind, namespace, status, wave, flags uint8 }

// The flags of a packed resource.
const (
	packedHook uint8 = 1 << iota
	packedRequiresPruning
)

// maxPackedValues is the most distinct values a table holds (a uint8
// index); an app whose resources have more keeps its list as decoded.
const maxPackedValues = 256

// DeepCopyInto shares in's contents, which are never changed.
func (in *PackedResources) DeepCopyInto(out *PackedResources) { *out = *in }

// indexOf returns v's index in *table, adding it if it is not there; false
// if the table is full.
func indexOf[T comparable](table *[]T, v T) (uint8, bool) {
	if i := slices.Index(*table, v); i >= 0 {
		return uint8(i), true
	}
	if len(*table) == maxPackedValues {
		return 0, false
	}
	*table = append(*table, v)
	return uint8(len(*table) - 1), true
}

// PackResources replaces s.Resources by its packed form, which
// ResourceCount and AllResources read; the list is kept as decoded if its
// resources have more than 256 distinct values of a field or their names
// more than 4 GiB.
func (s *ApplicationStatus) PackResources() {
	if len(s.Resources) == 0 {
		return
	}
	p := &PackedResources{resources: make([]packedResource, len(s.Resources)), ends: make([]uint32, len(s.Resources))}
	size := 0
	for i := range s.Resources {
		size += len(s.Resources[i].Name)
	}
	if size > 1<<32-1 {
		return
	}
	var names strings.Builder
	names.Grow(size)
	for i := range s.Resources {
		r := &s.Resources[i]
		names.WriteString(r.Name)
		p.ends[i] = uint32(names.Len())
		var ok [4]bool
		pr := &p.resources[i]
		pr.kind, ok[0] = indexOf(&p.kinds, resourceKind{r.Group, r.Version, r.Kind})
		pr.namespace, ok[1] = indexOf(&p.namespaces, r.Namespace)
		pr.status, ok[2] = indexOf(&p.statuses, r.Status)
		pr.wave, ok[3] = indexOf(&p.waves, r.SyncWave)
		if ok != [4]bool{true, true, true, true} {
			return
		}
		if r.Hook {
			pr.flags |= packedHook
		}
		if r.RequiresPruning {
			pr.flags |= packedRequiresPruning
		}
	}
	p.kinds, p.namespaces, p.statuses, p.waves = slices.Clip(p.kinds), slices.Clip(p.namespaces), slices.Clip(p.statuses), slices.Clip(p.waves)
	p.names = names.String()
	s.packed, s.Resources = p, nil
}

// UnpackResources puts packed resources back in s.Resources.
func (s *ApplicationStatus) UnpackResources() {
	if s.packed == nil {
		return
	}
	s.Resources = slices.Collect(s.AllResources())
	s.packed = nil
}

// ResourceCount is the number of the app's resources, packed or not.
func (s *ApplicationStatus) ResourceCount() int {
	if s.packed != nil {
		return len(s.packed.resources)
	}
	return len(s.Resources)
}

// AllResources yields the app's resources in Argo CD's order, packed or
// not.
func (s *ApplicationStatus) AllResources() iter.Seq[ResourceStatus] {
	return func(yield func(ResourceStatus) bool) {
		p := s.packed
		if p == nil {
			for _, r := range s.Resources {
				if !yield(r) {
					return
				}
			}
			return
		}
		start := uint32(0)
		for i, pr := range p.resources {
			k := p.kinds[pr.kind]
			r := ResourceStatus{Group: k.group, Version: k.version, Kind: k.kind, Namespace: p.namespaces[pr.namespace],
				Name: p.names[start:p.ends[i]], Status: p.statuses[pr.status], SyncWave: p.waves[pr.wave],
				Hook: pr.flags&packedHook != 0, RequiresPruning: pr.flags&packedRequiresPruning != 0}
			start = p.ends[i]
			if !yield(r) {
				return
			}
		}
	}
}
