package pager

import (
	"sort"
	"sync"

	"github.com/crowsnest/crowsnest/internal/rules"

	"github.com/crowsnest/crowsnest/internal/model"
)

// States keeps the state of every app as alerts judge it, for the pager.
// It is a view subscriber of the tracker: the pager reads it without
// taking the tracker's lock.
type States struct {
	mu   sync.Mutex
	apps map[string]rules.AppState
}

// NewStates returns an empty set of app states.
func NewStates() *States { return &States{apps: map[string]rules.AppState{}} }

// SetApp records the app's current state.
func (s *States) SetApp(v *model.AppView) {
	st := v.Status()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.apps[v.Key()] = st
}

// DeleteApp forgets a deleted app.
func (s *States) DeleteApp(key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.apps, key)
}

// List returns every app's state, sorted by namespace and name.
func (s *States) List() []rules.AppState {
	s.mu.Lock()
	out := make([]rules.AppState, 0, len(s.apps))
	for _, a := range s.apps {
		out = append(out, a)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].Namespace != out[j].Namespace {
			return out[i].Namespace < out[j].Namespace
		}
		return out[i].Name < out[j].Name
	})
	return out
}
