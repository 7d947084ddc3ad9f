package ledger

import (
	"container/list"
	"sync"

	"koers/domain"
)

// cached is a folded aggregate and how far into its subject it goes.
type cached struct {
	agg    domain.Aggregate
	cursor domain.Cursor
}

// aggCache keeps the most recently used folded aggregates, at most max.
// Entries are only ever replaced by newer ones (a later cursor), so two
// decisions loading the same aggregate at once cannot move it backwards.
type aggCache struct {
	mu    sync.Mutex
	max   int
	order *list.List // front: most recently used; values are domain.Ref
	items map[domain.Ref]*list.Element
	vals  map[domain.Ref]cached
}

func newAggCache(max int) *aggCache {
	return &aggCache{max: max, order: list.New(), items: map[domain.Ref]*list.Element{}, vals: map[domain.Ref]cached{}}
}

func (c *aggCache) get(r domain.Ref) (cached, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.items[r]
	if !ok {
		return cached{}, false
	}
	c.order.MoveToFront(el)
	return c.vals[r], true
}

func (c *aggCache) put(r domain.Ref, v cached) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if el, ok := c.items[r]; ok {
		if c.vals[r].cursor.Version() > v.cursor.Version() {
			return
		}
		c.vals[r] = v
		c.order.MoveToFront(el)
		return
	}
	c.items[r] = c.order.PushFront(r)
	c.vals[r] = v
	if c.order.Len() > c.max {
		last := c.order.Back()
		old := last.Value.(domain.Ref)
		c.order.Remove(last)
		delete(c.items, old)
		delete(c.vals, old)
	}
}
