package daemon

import "testing"

// Each shard has its own Lease and checkpoint, named for the shard and the
// shard count; unsharded, the name as given.
func TestPerShardNames(t *testing.T) {
	for _, tt := range []struct {
		name  string
		index string
		total int
		want  string
	}{
		{"crowsnest", "0", 1, "crowsnest"},
		{"crowsnest", "1", 3, "crowsnest-1-of-3"},
		{"cn", "0", 2, "cn-0-of-2"},
		{"", "1", 2, ""}, // no checkpoint
	} {
		o := Options{Shard: ShardOptions{Index: tt.index, Total: tt.total}}
		if got := o.perShard(tt.name); got != tt.want {
			t.Errorf("%q as shard %s of %d: %q, want %q", tt.name, tt.index, tt.total, got, tt.want)
		}
	}
}
