package tracker

import (
	"reflect"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/config"
	"github.com/crowsnest/crowsnest/internal/model"
)

// The environments of the config group apps by the rest of their name: the
// view of each app carries its env and its promotion group, with the
// order of the config's environments (the exposition's TestPromotionLag
// measures the lag from such views).
func TestPromotionGroups(t *testing.T) {
	conf, err := config.Parse([]byte("environments:\n  - env: dev\n    match: {name: 'dev-.*'}\n  - env: stage\n    match: {name: 'stage-.*'}\n  - env: prod\n    match: {name: 'prod-.*'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	views := &viewsSeen{}
	tr := New(conf, Subscribers{Views: []ViewSubscriber{views}}, promslog.NewNopLogger())
	for _, env := range []string{"dev", "stage", "prod"} {
		name := env + "-backend"
		tr.Handle(model.Event{Type: model.Added, Time: t0.Add(time.Minute), App: newApp(func(a *v1alpha1.Application) {
			a.Name, a.UID = name, types.UID("uid-"+name)
		})})
		v := views.last(name)
		if v == nil {
			t.Fatalf("no view of %s", name)
		}
		want := &model.Promotion{Group: "backend", Order: []string{"dev", "stage", "prod"}}
		if v.Env != env || !reflect.DeepEqual(v.Promotion, want) {
			t.Errorf("%s: env %q, promotion %+v; want %q, %+v", name, v.Env, v.Promotion, env, want)
		}
	}
}
