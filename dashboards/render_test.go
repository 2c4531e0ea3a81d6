package dashboards

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"
)

// update rewrites the rendered dashboards: go test ./dashboards -update.
var update = flag.Bool("update", false, "render the dashboards to dashboards/*.json, "+ChartDir+"/*.json and "+MixinDir+"/*.json")

// renderDirs are the directories that hold the rendered dashboards,
// relative to this package: its own (provisioned as files), the Helm
// chart's (ConfigMaps for the Grafana sidecar) and the mixin's.
func renderDirs() []string {
	return []string{".", filepath.Join("..", filepath.FromSlash(ChartDir)), filepath.Join("..", filepath.FromSlash(MixinDir))}
}

// TestRenderedFiles: the JSON files are what the builders render, in
// both directories, and no other dashboard lies there. With -update it
// writes them (and removes stale ones).
func TestRenderedFiles(t *testing.T) {
	files, err := Render()
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, dir := range renderDirs() {
		if *update {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, n := range names {
			path := filepath.Join(dir, n)
			if *update {
				if err := os.WriteFile(path, files[n], 0o644); err != nil {
					t.Fatal(err)
				}
				continue
			}
			got, err := os.ReadFile(path)
			switch {
			case err != nil:
				t.Errorf("%s: %v: run go test ./dashboards -update", path, err)
			case !bytes.Equal(got, files[n]):
				t.Errorf("%s is stale (not what the builders render): run go test ./dashboards -update", path)
			}
		}
		present, err := filepath.Glob(filepath.Join(dir, "*.json"))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range present {
			if slices.Contains(names, filepath.Base(p)) {
				continue
			}
			if *update {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
				continue
			}
			t.Errorf("%s is no dashboard the builders render: run go test ./dashboards -update to remove it", p)
		}
	}
}

// The render is stable: two renders give the same bytes (no map order or
// time leaks into the files).
func TestRenderIsStable(t *testing.T) {
	a, err := Render()
	if err != nil {
		t.Fatal(err)
	}
	b, err := Render()
	if err != nil {
		t.Fatal(err)
	}
	for n := range a {
		if !bytes.Equal(a[n], b[n]) {
			t.Errorf("%s renders differently twice", n)
		}
	}
}
