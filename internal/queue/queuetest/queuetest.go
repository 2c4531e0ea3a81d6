// Package queuetest runs an output's worker in a test.
package queuetest

import (
	"context"
	"sync"
	"testing"
)

// Start runs run (an output's Run) in a goroutine until the returned stop
// is called or the test ends: stop ends run's context and waits for run to
// return, its flush done. stop may be called more than once; a non-nil
// error from run fails the test.
func Start(t testing.TB, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("worker returned %v, want nil", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}
