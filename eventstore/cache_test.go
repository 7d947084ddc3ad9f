package eventstore

import (
	"fmt"
	"testing"
)

// A head read or written recently stays while many subjects go through
// the cache once each (a bulk apply's decision records): the subjects
// every batch appends to are not evicted, so their heads never cost a
// walk of their history.
func TestHeadCacheKeepsWhatIsUsed(t *testing.T) {
	const size = 100
	c := newHeadCache(size)
	c.put("koers.team.hot", head{seq: 1, hash: "h1"})
	c.put("koers.team.written", head{seq: 1, hash: "w1"})
	for i := range 50 * size {
		c.put(fmt.Sprintf("koers.decision.d%d", i), head{seq: uint64(i + 2)})
		if i%10 == 0 {
			if _, ok := c.get("koers.team.hot"); !ok {
				t.Fatalf("hot head evicted after %d other subjects", i+1)
			}
			c.put("koers.team.written", head{seq: uint64(i + 2), hash: "w"})
		}
		if n := len(c.cur) + len(c.old); n > size {
			t.Fatalf("cache holds %d heads, bound %d", n, size)
		}
	}
	if h, ok := c.get("koers.team.hot"); !ok || h.hash != "h1" {
		t.Fatalf("hot head %+v, %v: want seq 1 h1", h, ok)
	}
	if _, ok := c.get("koers.team.written"); !ok {
		t.Fatal("head written every ten subjects was evicted")
	}
	if _, ok := c.get("koers.decision.d0"); ok {
		t.Fatal("a head used once, 5,000 subjects ago, is still cached")
	}
}

// A head never moves backwards, whichever generation holds it, and a
// forgotten head is gone from both.
func TestHeadCacheNeverMovesBackAndForgets(t *testing.T) {
	for _, size := range []int{1, 2, 3, 10} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			c := newHeadCache(size)
			c.put("a", head{seq: 5, hash: "a5"})
			for i := range size / 2 { // a into the old generation
				c.put(fmt.Sprintf("x%d", i), head{seq: 1})
			}
			c.put("a", head{seq: 3, hash: "a3"})
			if h, ok := c.get("a"); ok && h.seq != 5 {
				t.Fatalf("head moved back to %+v", h)
			}
			c.put("a", head{seq: 7, hash: "a7"})
			if h, ok := c.get("a"); !ok || h.seq != 7 {
				t.Fatalf("head %+v, %v: want seq 7", h, ok)
			}
			c.forget("a")
			if _, ok := c.get("a"); ok {
				t.Fatal("forgotten head still cached")
			}
			if n := len(c.cur) + len(c.old); n > size {
				t.Fatalf("cache holds %d heads, bound %d", n, size)
			}
		})
	}
}
