package exposition

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/model"
)

// The lag of each environment of a promotion group behind the one before
// it, from the views the tracker hands on (TestPromotionGroups in the
// tracker package checks it groups these apps so).
func TestPromotionLag(t *testing.T) {
	c := NewPromotion(func() time.Time { return t0.Add(10 * time.Minute) })
	view := func(env string, history ...v1alpha1.RevisionHistory) *model.AppView {
		name := env + "-backend"
		return &model.AppView{
			App: webApp(func(a *v1alpha1.Application) {
				a.Name, a.UID = name, types.UID("uid-"+name)
				a.Status.History = history
			}),
			Env:       env,
			Promotion: &model.Promotion{Group: "backend", Order: []string{"dev", "stage", "prod"}},
		}
	}
	deployed := func(id int64, rev string, at time.Duration) v1alpha1.RevisionHistory {
		return v1alpha1.RevisionHistory{ID: id, Revision: rev, DeployedAt: metav1.NewTime(t0.Add(at))}
	}
	c.SetApp(view("dev", deployed(1, "r2", 5*time.Minute)))
	c.SetApp(view("stage", deployed(1, "r1", time.Minute)))
	c.SetApp(view("prod")) // never synced
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
	c.SetApp(view("prod", deployed(1, "r1", 9*time.Minute)))
	if err := testutil.CollectAndCompare(c, strings.NewReader(want("300", "0")), "crowsnest_promotion_lag_seconds"); err != nil {
		t.Error(err)
	}
	// dev re-syncs r2: stage still trails dev since dev first deployed r2.
	c.SetApp(view("dev", deployed(1, "r2", 5*time.Minute), deployed(2, "r2", 8*time.Minute)))
	if err := testutil.CollectAndCompare(c, strings.NewReader(want("300", "0")), "crowsnest_promotion_lag_seconds"); err != nil {
		t.Errorf("after dev's re-sync: %v", err)
	}
	if n := testutil.CollectAndCount(c, "crowsnest_promotion_revision_info"); n != 3 {
		t.Errorf("%d revision series, want one per env", n)
	}
}
