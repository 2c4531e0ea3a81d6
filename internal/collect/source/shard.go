package source

// Sharding: with --total-shards N > 1, N crowsnest processes (or HA pairs of
// them) split the Applications between them the way kube-state-metrics
// splits objects (its pkg/sharding): an app belongs to the shard that
// Jump consistent hashing (Lamping and Veach, 2014) gives the 64-bit FNV-1a
// hash of its UID among N buckets. The UID never changes for the life of an
// Application, and every process computes the same hash, so each app has
// exactly one shard, whatever the source, the event order or the restarts.
// Only that shard's tracker ever sees it: its series, traces, Loki events
// and pages come from that shard alone. Jump hashing, rather than the hash
// modulo N, moves only a 1/(N+1) share of the apps when N grows by one, so
// resharding disturbs few apps' series and traces.
//
// The filter sits before the tracker (Shard.Sink), so it works for every
// source; the Kubernetes source also reduces other shards' Applications to
// their metadata in its informers' transform (Shard.reduce), so that
// they cost each shard a few hundred bytes, not their whole status.

import (
	"fmt"
	"hash/fnv"
	"reflect"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/model"
)

// Shard is one shard of Total; the zero value and Total ≤ 1 are unsharded.
type Shard struct {
	Index, Total int
}

// Validate checks a shard as the flags give it; errors name the flags.
func (s Shard) Validate() error {
	switch {
	case s.Total < 1:
		return fmt.Errorf("--total-shards: must be at least 1, got %d", s.Total)
	case s.Index < 0:
		return fmt.Errorf("--shard: must not be negative, got %d", s.Index)
	case s.Index >= s.Total:
		return fmt.Errorf("--shard: must be less than --total-shards (%d), got %d (shards count from 0)", s.Total, s.Index)
	}
	return nil
}

// Sharded reports whether the apps are split between several shards.
func (s Shard) Sharded() bool { return s.Total > 1 }

// ShardOf is the shard of an object with uid among total, as
// kube-state-metrics computes it: the Jump consistent hash of the UID's
// 64-bit FNV-1a hash.
func ShardOf(uid types.UID, total int) int {
	if total <= 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(uid))
	return jumpHash(h.Sum64(), total)
}

// jumpHash is Jump consistent hashing ("A Fast, Minimal Memory, Consistent
// Hash Algorithm", Lamping and Veach, 2014): the bucket in [0, buckets) of
// key, such that going from n to n+1 buckets moves only the keys that land
// in the new one.
func jumpHash(key uint64, buckets int) int {
	b, j := int64(-1), int64(0)
	for j < int64(buckets) {
		b = j
		key = key*2862933555777941757 + 1
		j = int64(float64(b+1) * (float64(int64(1)<<31) / float64((key>>33)+1)))
	}
	return int(b)
}

// Owns reports whether the object with uid belongs to this shard.
func (s Shard) Owns(uid types.UID) bool {
	return !s.Sharded() || ShardOf(uid, s.Total) == s.Index
}

// ownsObject is Owns on an object's metadata; objects without metadata are
// kept.
func (s Shard) ownsObject(obj any) bool {
	if !s.Sharded() {
		return true
	}
	m, err := apimeta.Accessor(obj)
	if err != nil {
		return true
	}
	return s.Owns(m.GetUID())
}

// Sink passes on only the events of this shard's apps; unsharded, sink
// itself. Workload, AppProject and ApplicationSet events (which a replay
// delivers through the same sink) pass whole when sink takes them: every
// shard watches every AppProject and ApplicationSet (a rollout's apps are
// in many shards), and workloads join only apps their tracker knows.
func (s Shard) Sink(sink Sink) Sink {
	if !s.Sharded() {
		return sink
	}
	return shardSink{shard: s, inner: sink}
}

type shardSink struct {
	shard Shard
	inner Sink
}

func (f shardSink) Handle(e model.Event) {
	if e.App == nil || f.shard.ownsObject(e.App) {
		f.inner.Handle(e)
	}
}

func (f shardSink) HandleWorkload(e model.WorkloadEvent) {
	if w, ok := f.inner.(WorkloadSink); ok {
		w.HandleWorkload(e)
	}
}

func (f shardSink) HandleProject(e model.ProjectEvent) {
	if p, ok := f.inner.(ProjectSink); ok {
		p.HandleProject(e)
	}
}

func (f shardSink) HandleApplicationSet(e model.ApplicationSetEvent) {
	if s, ok := f.inner.(ApplicationSetSink); ok {
		s.HandleApplicationSet(e)
	}
}

// reduce, the Kubernetes source's transform hook, reduces an Application
// of another shard to what its informer needs to keep watching it (name,
// namespace, UID, resource version): everything but the type and object
// metadata is zeroed, and of the metadata labels, annotations, owners,
// finalizers and managed fields go. It reports whether obj is foreign: the
// transform then skips its own trimming. Only the object the informer has
// just decoded is changed.
func (s Shard) reduce(obj any) (any, bool) {
	if s.ownsObject(obj) {
		return obj, false
	}
	m, err := apimeta.Accessor(obj)
	if err != nil {
		return obj, false
	}
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		return obj, false
	}
	v = v.Elem()
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.Name != "TypeMeta" && f.Name != "ObjectMeta" && f.IsExported() {
			v.Field(i).SetZero()
		}
	}
	m.SetLabels(nil)
	m.SetAnnotations(nil)
	m.SetOwnerReferences(nil)
	m.SetFinalizers(nil)
	m.SetManagedFields(nil)
	return obj, true
}

// SetShard makes the source's informers reduce other shards' Applications
// to their metadata (Shard.reduce). Call it before Run; the tracker's
// filter is Shard.Sink.
func (s *KubeSource) SetShard(sh Shard) { s.trim.shard = sh }
