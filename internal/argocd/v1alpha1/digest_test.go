package v1alpha1

import (
	"encoding/json"
	"testing"

	argov1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
)

// TestSourceDigests: the sources Argo CD writes into the comparison, the
// history and the sync result, from its own types, have one digest when
// they are the same source and another when any setting differs (a Helm
// parameter, a Kustomize image, the path); a digest survives encoding.
func TestSourceDigests(t *testing.T) {
	helm := func(tag string) argov1.ApplicationSource {
		return argov1.ApplicationSource{
			RepoURL: "https://git.example.com/deploy.git", Path: "charts/web", TargetRevision: "main",
			Helm: &argov1.ApplicationSourceHelm{Parameters: []argov1.HelmParameter{{Name: "image.tag", Value: tag}}, ValueFiles: []string{"prod.yaml"}},
		}
	}
	app := argov1.Application{}
	app.Status.Sync.ComparedTo = argov1.ComparedTo{Source: helm("1.2.0"), Sources: argov1.ApplicationSources{helm("1.2.0"), helm("1.3.0")}}
	app.Status.History = argov1.RevisionHistories{
		{ID: 1, Revision: "a", Source: helm("1.1.0")},
		{ID: 2, Revision: "a", Source: helm("1.2.0"), Sources: argov1.ApplicationSources{helm("1.2.0"), helm("1.3.0")}},
	}
	kust := helm("1.2.0")
	kust.Helm = nil
	kust.Kustomize = &argov1.ApplicationSourceKustomize{Images: argov1.KustomizeImages{"web=registry.example.com/web:1.2.0"}}
	app.Status.OperationState = &argov1.OperationState{SyncResult: &argov1.SyncOperationResult{Revision: "a", Source: kust}}
	b, err := json.Marshal(&app)
	if err != nil {
		t.Fatal(err)
	}
	var ours Application
	if err := json.Unmarshal(b, &ours); err != nil {
		t.Fatal(err)
	}
	st := &ours.Status
	compared, h1, h2, result := st.Sync.ComparedTo.Source, st.History[0].Source, st.History[1].Source, st.OperationState.SyncResult.Source
	for name, d := range map[string]SourceDigest{"compared": compared, "history 1": h1, "history 2": h2, "sync result": result} {
		if d.IsZero() {
			t.Errorf("%s: no digest", name)
		}
	}
	if compared != h2 {
		t.Errorf("the same source compared (%v) and synced (%v) differ", compared, h2)
	}
	if compared == h1 {
		t.Error("another Helm parameter has the same digest")
	}
	if compared == result {
		t.Error("Kustomize images instead of Helm parameters have the same digest")
	}
	if got, want := st.History[1].Sources, st.Sync.ComparedTo.Sources; got.IsZero() || got != want || got.SourceDigest == compared {
		t.Errorf("multi-source digests: history %v, compared %v", got, want)
	}
	if !st.History[0].Sources.IsZero() {
		t.Errorf("a single-source entry has sources %v", st.History[0].Sources)
	}

	// Encoded (a recording) and decoded again, every digest is the same.
	again, err := json.Marshal(&ours)
	if err != nil {
		t.Fatal(err)
	}
	var replayed Application
	if err := json.Unmarshal(again, &replayed); err != nil {
		t.Fatalf("decode the encoded digests: %v\n%s", err, again)
	}
	if replayed.Status.Sync.ComparedTo.Source != compared || replayed.Status.History[1].Sources != st.History[1].Sources ||
		replayed.Status.OperationState.SyncResult.Source != result {
		t.Errorf("digests changed through their encoding: %s", again)
	}
	// An absent source has no digest and encodes to nothing.
	var none RevisionHistory
	if err := json.Unmarshal([]byte(`{"id":3,"revision":"b","deployedAt":null}`), &none); err != nil || !none.Source.IsZero() {
		t.Errorf("absent source: %v (%v)", none.Source, err)
	}
	if b, _ := json.Marshal(none); string(b) != `{"revision":"b","deployedAt":null,"id":3,"initiatedBy":{}}` {
		t.Errorf("absent source encoded: %s", b)
	}
	// Another order of the same sources is another list.
	app.Status.Sync.ComparedTo.Sources = argov1.ApplicationSources{helm("1.3.0"), helm("1.2.0")}
	b, err = json.Marshal(&app)
	if err != nil {
		t.Fatal(err)
	}
	var swapped Application
	if err := json.Unmarshal(b, &swapped); err != nil {
		t.Fatal(err)
	}
	if swapped.Status.Sync.ComparedTo.Sources == st.History[1].Sources {
		t.Error("two sources swapped have the same digest")
	}
	for _, bad := range []string{`"digest:xyz"`, `"other"`, `42`} {
		var d SourceDigest
		if err := json.Unmarshal([]byte(bad), &d); err == nil {
			t.Errorf("%s decoded to %v, want an error", bad, d)
		}
	}
}
