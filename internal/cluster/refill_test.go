package cluster

import (
	"testing"
	"time"
)

// TestRefillCappedAtBurst: a bucket idle for a night holds burst tokens,
// not a night's worth; a recent one earns by the time passed; a clock
// behind Last neither earns nor moves Last back.
func TestRefillCappedAtBurst(t *testing.T) {
	now := time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		name   string
		st     bucketState
		tokens float64
		last   time.Time
	}{
		{"idle overnight", bucketState{Tokens: 0, Last: now.Add(-10 * time.Hour).UnixNano()}, 3, now},
		{"in debt, idle", bucketState{Tokens: -5, Last: now.Add(-time.Hour).UnixNano()}, 3, now},
		{"half a second", bucketState{Tokens: -1, Last: now.Add(-500 * time.Millisecond).UnixNano()}, 1, now},
		{"clock behind", bucketState{Tokens: 1, Last: now.Add(time.Second).UnixNano()}, 1, now.Add(time.Second)},
	} {
		got := c.st.refill(now, 4, 3)
		if got.Tokens != c.tokens || got.Last != c.last.UnixNano() || got.Rate != 4 || got.Burst != 3 {
			t.Errorf("%s: %+v, want %v tokens at %v", c.name, got, c.tokens, c.last)
		}
	}
}
