package source

import (
	"sync"
	"time"

	"github.com/crowsnest/crowsnest/internal/argocd/v1alpha1"
	"github.com/crowsnest/crowsnest/internal/collect/collecttest"

	"github.com/crowsnest/crowsnest/internal/model"
)

// newApp returns an Application named web, changed by mutate.
func newApp(mutate ...func(*v1alpha1.Application)) *v1alpha1.Application {
	return collecttest.WebApp(mutate...)
}

// appsSink keeps the last state of every app it was handed, as the
// tracker would.
type appsSink struct {
	mu   sync.Mutex
	apps map[string]*v1alpha1.Application
}

func newAppsSink() *appsSink { return &appsSink{apps: map[string]*v1alpha1.Application{}} }

func (s *appsSink) Handle(e model.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := model.Key(e.App.Namespace, e.App.Name)
	if e.Type == model.Deleted {
		delete(s.apps, key)
		return
	}
	s.apps[key] = e.App
}

func (s *appsSink) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.apps)
}

func (s *appsSink) get(key string) (*v1alpha1.Application, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.apps[key]
	return a, ok
}

// t0 is the time the tests' recordings start at.
var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }
