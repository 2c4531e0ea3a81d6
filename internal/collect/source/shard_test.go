package source

import (
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/model"
)

// The bucket of a few keys for 1, 2, 3... buckets, as the paper's
// reference C++ implementation computes them.
func TestJumpHashMatchesTheReference(t *testing.T) {
	for _, tt := range []struct {
		key     uint64
		buckets []int
	}{
		{0, []int{0, 0, 0, 0, 0, 0, 0, 0}},
		{1, []int{0, 0, 0, 0, 0, 0, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 6, 17, 17}},
		{0xdeadbeef, []int{0, 1, 2, 3, 3, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 5, 16, 16, 16}},
		{0x0ddc0ffeebadf00d, []int{0, 1, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 15, 15, 15, 15}},
	} {
		for i, want := range tt.buckets {
			if got := jumpHash(tt.key, i+1); got != want {
				t.Errorf("jumpHash(%#x, %d) = %d, want %d", tt.key, i+1, got, want)
			}
		}
	}
}

// Every UID has exactly one shard, the shards share the apps about evenly,
// and growing from n to n+1 shards moves apps only to the new shard.
func TestShardsSplitAppsOnceEvenlyAndStably(t *testing.T) {
	const apps = 10000
	uid := func(i int) types.UID {
		return types.UID(fmt.Sprintf("%08x-1f2e-4d3c-8b7a-%012x", i*2654435761, i))
	}
	for total := 1; total <= 5; total++ {
		counts := make([]int, total)
		for i := range apps {
			owners := 0
			for s := range total {
				if (Shard{Index: s, Total: total}).Owns(uid(i)) {
					owners++
					counts[s]++
				}
			}
			if owners != 1 {
				t.Fatalf("%d shards: app %d has %d owners", total, i, owners)
			}
			if next := ShardOf(uid(i), total+1); next != ShardOf(uid(i), total) && next != total {
				t.Fatalf("%d→%d shards: app %d moved from %d to %d, not to the new shard", total, total+1, i, ShardOf(uid(i), total), next)
			}
		}
		for s, n := range counts {
			if even := apps / total; n < even*9/10 || n > even*11/10 {
				t.Errorf("%d shards: shard %d has %d apps, want about %d", total, s, n, even)
			}
		}
	}
}

func TestShardValidate(t *testing.T) {
	for _, tt := range []struct {
		shard Shard
		want  string // part of the error; "" for none
	}{
		{Shard{0, 1}, ""},
		{Shard{2, 3}, ""},
		{Shard{0, 0}, "--total-shards: must be at least 1, got 0"},
		{Shard{-1, 2}, "--shard: must not be negative, got -1"},
		{Shard{2, 2}, "--shard: must be less than --total-shards (2), got 2"},
	} {
		err := tt.shard.Validate()
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%+v: %v", tt.shard, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%+v: error %v, want %q", tt.shard, err, tt.want)
		}
	}
}

func shardTestApp(uid string) *v1alpha1.Application {
	return &v1alpha1.Application{
		ObjectMeta: metav1.ObjectMeta{Name: "app-" + uid, Namespace: "argocd", UID: types.UID(uid), ResourceVersion: "7",
			Labels: map[string]string{"env": "prod"}, Annotations: map[string]string{"a": strings.Repeat("x", 1000)},
			Finalizers: []string{"resources-finalizer.argocd.argoproj.io"}},
		Spec: v1alpha1.ApplicationSpec{Project: "default", Source: &v1alpha1.ApplicationSource{RepoURL: "https://example.com/r.git"}},
		Status: v1alpha1.ApplicationStatus{Sync: v1alpha1.SyncStatus{Status: v1alpha1.SyncStatusCodeSynced},
			Resources: []v1alpha1.ResourceStatus{{Kind: "ConfigMap", Name: "c"}}},
	}
}

// uidsOfShards returns a UID of each of total shards.
func uidsOfShards(t *testing.T, total int) []string {
	t.Helper()
	out := make([]string, total)
	found := 0
	for i := 0; found < total; i++ {
		uid := fmt.Sprintf("uid-%d", i)
		if s := ShardOf(types.UID(uid), total); out[s] == "" {
			out[s] = uid
			found++
		}
	}
	return out
}

func TestShardSinkPassesOnlyItsApps(t *testing.T) {
	uids := uidsOfShards(t, 2)
	var got []string
	sink := Shard{Index: 1, Total: 2}.Sink(SinkFunc(func(e model.Event) {
		if e.App == nil {
			got = append(got, string(e.Type)+" no app")
			return
		}
		got = append(got, string(e.Type)+" "+string(e.App.UID))
	}))
	for _, typ := range model.EventTypes() {
		for _, uid := range uids {
			sink.Handle(model.Event{Type: typ, App: shardTestApp(uid)})
		}
	}
	sink.Handle(model.Event{Type: model.Added}) // no app: passed on, the tracker ignores it
	want := []string{"ADDED " + uids[1], "MODIFIED " + uids[1], "DELETED " + uids[1], "ADDED no app"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("passed %q, want %q", got, want)
	}
	if (Shard{Total: 1}).Sink(sink) == nil {
		t.Error("unsharded: no sink")
	}
}

// The transform reduces another shard's app to its identity and leaves
// its own shard's apps to the usual trimming.
func TestTransformReducesOtherShardsApps(t *testing.T) {
	uids := uidsOfShards(t, 3)
	trim := newAppTrimmer()
	trim.shard = Shard{Index: 2, Total: 3}
	for s, uid := range uids {
		obj, err := trim.application(shardTestApp(uid))
		if err != nil {
			t.Fatal(err)
		}
		app := obj.(*v1alpha1.Application)
		if app.Name != "app-"+uid || app.Namespace != "argocd" || string(app.UID) != uid || app.ResourceVersion != "7" {
			t.Errorf("shard %d: identity lost: %+v", s, app.ObjectMeta)
		}
		own := s == 2
		if kept := app.Spec.Project != "" && app.Status.ResourceCount() == 1 && app.Labels["env"] == "prod"; kept != own {
			t.Errorf("shard %d of 3, transform of shard 2: spec, status and labels kept %v, want %v", s, kept, own)
		}
		if !own && (app.Annotations != nil || app.Finalizers != nil || app.Status.Sync.Status != "") {
			t.Errorf("shard %d: not reduced: %+v", s, app)
		}
	}
	// Unsharded, nothing is reduced.
	obj, _ := newAppTrimmer().application(shardTestApp(uids[0]))
	if obj.(*v1alpha1.Application).Spec.Project != "default" {
		t.Error("unsharded: the app was reduced")
	}
}
