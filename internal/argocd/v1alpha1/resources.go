package v1alpha1

import (
	"iter"
	"slices"
	"strings"
)

// PackedResources is an app's status.resources in about a third of the
// memory of the decoded list: the resources of one app share a handful of
// (group, version, kind, namespace, status, hook, prune, wave) tuples, so
// each tuple is kept once, a resource is the index of its tuple and its
// name, and the names are one string. The decoded list of 50 resources
// takes 7.7 KB (a 112-byte element each, the names in strings of their own),
// packed 2.3 KB (BenchmarkMemoryPerDecodedApp). It is immutable once built:
// copies of the app share it.
type PackedResources struct {
	tuples []ResourceStatus // without Name
	tuple  []uint8          // resource i's tuple
	ends   []uint32         // resource i's name is names[ends[i-1]:ends[i]]
	names  string
}

// maxPackedTuples is the most tuples a packed list holds (a uint8 index);
// an app whose resources have more keeps its list as decoded.
const maxPackedTuples = 256

// DeepCopyInto shares in's contents, which are never changed.
func (in *PackedResources) DeepCopyInto(out *PackedResources) { *out = *in }

// PackResources replaces s.Resources by its packed form, which
// ResourceCount and AllResources read; the list is kept as decoded if its
// resources have more than 256 distinct tuples or their names more than
// 4 GiB.
func (s *ApplicationStatus) PackResources() {
	if len(s.Resources) == 0 {
		return
	}
	p := &PackedResources{tuple: make([]uint8, len(s.Resources)), ends: make([]uint32, len(s.Resources))}
	size := 0
	for i := range s.Resources {
		size += len(s.Resources[i].Name)
	}
	if size > 1<<32-1 {
		return
	}
	var names strings.Builder
	names.Grow(size)
	var index map[ResourceStatus]int // once the tuples are too many to search
	for i, r := range s.Resources {
		names.WriteString(r.Name)
		p.ends[i] = uint32(names.Len())
		r.Name = ""
		j := -1
		if index != nil {
			if k, ok := index[r]; ok {
				j = k
			}
		} else {
			j = slices.Index(p.tuples, r)
		}
		if j < 0 {
			if len(p.tuples) == maxPackedTuples {
				return
			}
			j = len(p.tuples)
			p.tuples = append(p.tuples, r)
			if index != nil {
				index[r] = j
			} else if len(p.tuples) > 16 {
				index = make(map[ResourceStatus]int, 2*len(p.tuples))
				for k, t := range p.tuples {
					index[t] = k
				}
			}
		}
		p.tuple[i] = uint8(j)
	}
	p.tuples = slices.Clip(p.tuples)
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
		return len(s.packed.tuple)
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
		for i, t := range p.tuple {
			r := p.tuples[t]
			r.Name = p.names[start:p.ends[i]]
			start = p.ends[i]
			if !yield(r) {
				return
			}
		}
	}
}
