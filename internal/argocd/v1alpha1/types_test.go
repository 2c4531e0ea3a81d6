package v1alpha1

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	argov1 "github.com/argoproj/argo-cd/v3/pkg/apis/application/v1alpha1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// fill sets every field v reaches to a value that is not zero, named after
// its path where it is a string, so that a field lost on the way shows.
// Source digests are left zero: they stand for a whole source, which
// TestSourceDigests checks.
func fill(v reflect.Value, path string) {
	if t := v.Type(); t == reflect.TypeFor[SourceDigest]() || t == reflect.TypeFor[SourceDigests]() {
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("v:" + path)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(int64(len(path)))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(v.Elem(), path)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(v.Index(0), path+"[0]")
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[metav1.Time]() {
			v.Set(reflect.ValueOf(metav1.NewTime(time.Date(2026, 12, 1, 3, 0, len(path)%60, 0, time.UTC))))
			return
		}
		for i := 0; i < v.NumField(); i++ {
			f := v.Type().Field(i)
			if f.Anonymous || !f.IsExported() { // TypeMeta, ObjectMeta, ListMeta: Kubernetes' own; what crowsnest derives
				continue
			}
			fill(v.Field(i), path+"."+f.Name)
		}
	default:
		panic(fmt.Sprintf("fill: %s has kind %s", path, v.Kind()))
	}
}

// clearDigests zeroes every source digest v reaches.
func clearDigests(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer:
		if !v.IsNil() {
			clearDigests(v.Elem())
		}
	case reflect.Slice:
		for i := 0; i < v.Len(); i++ {
			clearDigests(v.Index(i))
		}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[SourceDigest]() || v.Type() == reflect.TypeFor[SourceDigests]() {
			v.SetZero()
			return
		}
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).IsExported() {
				clearDigests(v.Field(i))
			}
		}
	}
}

// roundTrip sends in through Argo CD's own type: in's JSON decoded into
// argo, encoded again, decoded into a new value of in's type.
func roundTrip[T, A any](t *testing.T, in *T) *T {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	argo := new(A)
	if err := json.Unmarshal(b, argo); err != nil {
		t.Fatalf("Argo CD's %T does not decode crowsnest's JSON: %v", argo, err)
	}
	if b, err = json.Marshal(argo); err != nil {
		t.Fatal(err)
	}
	out := new(T)
	if err := json.Unmarshal(b, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDecodesArgoCDJSON: every field the lean types declare has the JSON
// name and shape of Argo CD v3's own type, so it is decoded from what the
// API server and argocd-server send. A field named or typed differently
// would be lost through Argo CD's type.
func TestDecodesArgoCDJSON(t *testing.T) {
	check := func(name string, in, out any) {
		t.Helper()
		// Argo CD encodes an empty source as {"repoURL":""}, which has a
		// digest: digests are TestSourceDigests' to check.
		clearDigests(reflect.ValueOf(out).Elem())
		// Compared as JSON: decoded times are in the local zone.
		a, _ := json.Marshal(in)
		b, _ := json.Marshal(out)
		if string(a) != string(b) {
			t.Errorf("%s lost fields through Argo CD's type:\nsent %s\ngot  %s", name, a, b)
		}
	}
	app := &Application{}
	fill(reflect.ValueOf(app).Elem(), "app")
	// Argo CD's SyncOperationResource hides Exclude from JSON and ours
	// has no such field; the rest must match.
	check("Application", app, roundTrip[Application, argov1.Application](t, app))

	proj := &AppProject{}
	fill(reflect.ValueOf(proj).Elem(), "project")
	check("AppProject", proj, roundTrip[AppProject, argov1.AppProject](t, proj))

	ev := &ApplicationWatchEvent{}
	fill(reflect.ValueOf(ev).Elem(), "event")
	check("ApplicationWatchEvent", ev, roundTrip[ApplicationWatchEvent, argov1.ApplicationWatchEvent](t, ev))

	md := &RevisionMetadata{}
	fill(reflect.ValueOf(md).Elem(), "md")
	check("RevisionMetadata", md, roundTrip[RevisionMetadata, argov1.RevisionMetadata](t, md))

	oci := &OCIMetadata{}
	fill(reflect.ValueOf(oci).Elem(), "oci")
	check("OCIMetadata", oci, roundTrip[OCIMetadata, argov1.OCIMetadata](t, oci))
}

// The sync window logic is Argo CD's: for windows of every kind and
// matcher, Matches and CanSync agree with Argo CD's own on the same JSON.
func TestSyncWindowsAgreeWithArgoCD(t *testing.T) {
	hour := time.Now().UTC().Hour()
	now := fmt.Sprintf("0 %d * * *", hour)           // open since this hour began, for 2h
	later := fmt.Sprintf("0 %d * * *", (hour+12)%24) // closed now
	windows := []string{
		`[{"kind":"deny","schedule":"` + now + `","duration":"2h","applications":["web-*"]}]`,
		`[{"kind":"deny","schedule":"` + now + `","duration":"2h","applications":["*"],"manualSync":true}]`,
		`[{"kind":"allow","schedule":"` + later + `","duration":"1h","namespaces":["prod-*"]}]`,
		`[{"kind":"allow","schedule":"` + now + `","duration":"2h","clusters":["in-cluster"]},{"kind":"deny","schedule":"` + later + `","duration":"1h","applications":["*"]}]`,
		`[{"kind":"deny","schedule":"` + now + `","duration":"2h","applications":["web-*"],"namespaces":["dev"],"andOperator":true}]`,
		`[{"kind":"deny","schedule":"` + now + `","duration":"2h","clusters":["https://prod.example.com"],"timeZone":"Europe/Berlin"}]`,
		`[{"kind":"allow","schedule":"` + later + `","duration":"1h","applications":["*"],"manualSync":true,"syncOverrun":true}]`,
	}
	apps := []string{
		`{"metadata":{"name":"web-1","namespace":"argocd"},"spec":{"destination":{"name":"in-cluster","namespace":"dev"},"project":"p"}}`,
		`{"metadata":{"name":"api","namespace":"argocd"},"spec":{"destination":{"server":"https://prod.example.com","namespace":"prod-eu"},"project":"p"}}`,
		`{"metadata":{"name":"web-2","namespace":"argocd"},"spec":{"destination":{"server":"https://kubernetes.default.svc","namespace":"prod-us"},"project":"p"}}`,
	}
	for i, w := range windows {
		var ours SyncWindows
		var theirs argov1.SyncWindows
		if err := json.Unmarshal([]byte(w), &ours); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(w), &theirs); err != nil {
			t.Fatal(err)
		}
		for _, a := range apps {
			var app Application
			var argoApp argov1.Application
			if err := json.Unmarshal([]byte(a), &app); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(a), &argoApp); err != nil {
				t.Fatal(err)
			}
			m, am := ours.Matches(&app), theirs.Matches(&argoApp)
			if (m == nil) != (am == nil) || m != nil && len(*m) != len(*am) {
				t.Errorf("windows %d, app %s: Matches %v, Argo CD's %v", i, app.Name, m, am)
				continue
			}
			if m == nil {
				continue
			}
			for _, manual := range []bool{false, true} {
				started := time.Now().Add(-3 * time.Hour)
				for _, op := range []*time.Time{nil, &started} {
					got, err := m.CanSync(manual, op)
					want, aerr := am.CanSync(manual, op)
					if got != want || (err == nil) != (aerr == nil) {
						t.Errorf("windows %d, app %s, manual %v, started %v: CanSync %v, %v; Argo CD's %v, %v", i, app.Name, manual, op != nil, got, err, want, aerr)
					}
				}
			}
		}
	}
}
