package rules

import (
	"testing"
	"time"
)

// Every alert is in a group; the pages are evaluated at Prometheus' own
// interval and only prod's criticals share their group; a group evaluated
// every minute holds only alerts that wait 5 minutes or more (its minute
// then delays them a fifth at most); no group is empty.
func TestAlertGroups(t *testing.T) {
	groups := map[string]AlertGroup{}
	for _, g := range AlertGroups() {
		groups[g.Name] = g
	}
	for _, g := range RecordingGroups() {
		groups[g.Name] = AlertGroup{Name: g.Name, Interval: g.Interval}
	}
	used := map[string]bool{}
	for _, a := range Alerts() {
		g, ok := groups[a.Group]
		if !ok {
			t.Errorf("%s: group %q is none of AlertGroups and RecordingGroups", a.Name, a.Group)
			continue
		}
		used[a.Group] = true
		for _, v := range a.Variants {
			if v.Severity == Critical && a.Group != GroupProd {
				t.Errorf("%s: a critical variant belongs in %s", a.Name, GroupProd)
			}
			if v.Severity == Critical && g.Interval != 0 {
				t.Errorf("%s pages, in group %s evaluated every %v", a.Name, g.Name, g.Interval)
			}
		}
		if g.Interval >= time.Minute && a.For < 5*time.Minute {
			t.Errorf("%s (for %v) is in %s, evaluated every %v: too slow for it", a.Name, a.For, g.Name, g.Interval)
		}
	}
	for _, g := range AlertGroups() {
		if !used[g.Name] {
			t.Errorf("group %s has no alert", g.Name)
		}
	}
}
