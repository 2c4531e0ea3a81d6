package dora

import (
	"container/list"
	"sync"
	"time"

	"github.com/crowsnest/crowsnest/internal/model"
)

// cacheKey identifies a revision of a repository.
type cacheKey struct{ repoURL, revision string }

// cacheEntry is what a lookup of one revision found. A commit never
// changes, so found entries stay until evicted; only failures expire.
type cacheEntry struct {
	// commit is the commit found; nil when unsupported or failed.
	commit *model.Commit
	// unsupported: the source has no commit Argo CD can tell of.
	unsupported bool
	// failed: the fetch failed; the entry expires at expires, and tells
	// the next failure of the revision that it was already logged.
	failed  bool
	expires time.Time
}

// commitCache is a bounded LRU of lookups by revision. The worker fills
// it; the operation decorator reads it from the tracker's goroutines, so
// it is locked, only ever briefly.
type commitCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // of *cacheItem, most recently used first
	items map[cacheKey]*list.Element
}

type cacheItem struct {
	key   cacheKey
	entry cacheEntry
}

func newCommitCache(size int) *commitCache {
	return &commitCache{max: size, order: list.New(), items: map[cacheKey]*list.Element{}}
}

// get returns the entry of k, marking it used; fresh is false for a
// failure older than its expiry (the entry is still returned).
func (c *commitCache) get(k cacheKey, now time.Time) (e cacheEntry, ok, fresh bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[k]
	if !ok {
		return cacheEntry{}, false, false
	}
	c.order.MoveToFront(el)
	e = el.Value.(*cacheItem).entry
	return e, true, !e.failed || now.Before(e.expires)
}

// commit returns the commit cached for k, if any, without marking it
// used: a peek for the operation decorator.
func (c *commitCache) commit(k cacheKey) *model.Commit {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		return el.Value.(*cacheItem).entry.commit
	}
	return nil
}

// put sets the entry of k, evicting the least recently used entry when
// the cache is full.
func (c *commitCache) put(k cacheKey, e cacheEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[k]; ok {
		el.Value.(*cacheItem).entry = e
		c.order.MoveToFront(el)
		return
	}
	c.items[k] = c.order.PushFront(&cacheItem{key: k, entry: e})
	for c.order.Len() > c.max {
		last := c.order.Back()
		c.order.Remove(last)
		delete(c.items, last.Value.(*cacheItem).key)
	}
}

// len returns the number of entries.
func (c *commitCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.order.Len()
}
