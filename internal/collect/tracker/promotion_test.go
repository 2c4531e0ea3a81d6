package tracker

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"

	"github.com/crowsnest/crowsnest/internal/collect/exposition"
	"github.com/crowsnest/crowsnest/internal/config"
	"github.com/crowsnest/crowsnest/internal/model"
)

func TestPromotionLag(t *testing.T) {
	conf, err := config.Parse([]byte("environments:\n  - env: dev\n    match: {name: 'dev-.*'}\n  - env: stage\n    match: {name: 'stage-.*'}\n  - env: prod\n    match: {name: 'prod-.*'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	c := exposition.NewPromotion(func() time.Time { return t0.Add(10 * time.Minute) })
	tr := New(conf, Subscribers{Views: []ViewSubscriber{c}}, promslog.NewNopLogger())
	deploy := func(name, rev string, at time.Duration) {
		a := newApp(func(a *v1alpha1.Application) {
			a.Name, a.UID = name, types.UID("uid-"+name)
			if rev != "" {
				a.Status.History = v1alpha1.RevisionHistories{{ID: 1, Revision: rev, DeployedAt: metav1.NewTime(t0.Add(at))}}
			}
		})
		tr.Handle(model.Event{Type: model.Modified, Time: t0.Add(at), App: a})
	}
	deploy("dev-backend", "r2", 5*time.Minute)
	deploy("stage-backend", "r1", time.Minute)
	deploy("prod-backend", "", 0) // never synced
	want := func(devStage, stageProd string) string {
		return `
# HELP crowsnest_promotion_lag_seconds How long the environment ` + "`to`" + ` has trailed ` + "`from`" + ` in the promotion order: since ` + "`from`" + ` deployed a revision ` + "`to`" + ` has not deployed since; 0 when ` + "`to`" + ` runs the same revision or deployed after ` + "`from`" + `.
# TYPE crowsnest_promotion_lag_seconds gauge
crowsnest_promotion_lag_seconds{from="dev",group="backend",to="stage"} ` + devStage + `
crowsnest_promotion_lag_seconds{from="stage",group="backend",to="prod"} ` + stageProd + `
`
	}
	// stage trails dev since dev deployed r2 (5 min ago); prod trails
	// stage since stage deployed r1 (9 min ago).
	if err := testutil.CollectAndCompare(c, strings.NewReader(want("300", "540")), "crowsnest_promotion_lag_seconds"); err != nil {
		t.Error(err)
	}
	// prod syncs r1 by hand: no lag behind stage any more.
	deploy("prod-backend", "r1", 9*time.Minute)
	if err := testutil.CollectAndCompare(c, strings.NewReader(want("300", "0")), "crowsnest_promotion_lag_seconds"); err != nil {
		t.Error(err)
	}
	// dev re-syncs r2: stage still trails dev since dev first deployed r2.
	a := newApp(func(a *v1alpha1.Application) {
		a.Name, a.UID = "dev-backend", types.UID("uid-dev-backend")
		a.Status.History = v1alpha1.RevisionHistories{
			{ID: 1, Revision: "r2", DeployedAt: metav1.NewTime(t0.Add(5 * time.Minute))},
			{ID: 2, Revision: "r2", DeployedAt: metav1.NewTime(t0.Add(8 * time.Minute))},
		}
	})
	tr.Handle(model.Event{Type: model.Modified, Time: t0.Add(8 * time.Minute), App: a})
	if err := testutil.CollectAndCompare(c, strings.NewReader(want("300", "0")), "crowsnest_promotion_lag_seconds"); err != nil {
		t.Errorf("after dev's re-sync: %v", err)
	}
	if n := testutil.CollectAndCount(c, "crowsnest_promotion_revision_info"); n != 3 {
		t.Errorf("%d revision series, want one per env", n)
	}
}
