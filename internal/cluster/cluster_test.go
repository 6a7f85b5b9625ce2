package cluster_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/internal/cluster"
	"github.com/plumbhq/plumb/internal/queue"
	"github.com/plumbhq/plumb/internal/queue/natstest"
	"github.com/plumbhq/plumb/store"
)

// instances opens n Clusters (as n plumb processes would) on one NATS
// server, each over its own queue connection.
func instances(t *testing.T, n int, cfg cluster.Config) []*cluster.Cluster {
	t.Helper()
	node := natstest.StartServer(t)
	var out []*cluster.Cluster
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		q, err := queue.Open(ctx, queue.Config{URLs: []string{node.URL}})
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Close() })
		c, err := cluster.Open(ctx, q, cfg)
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

func TestTokenStoreSealed(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{3}, 32)
	cs := instances(t, 2, cluster.Config{Key: key})
	a, b := cs[0].Tokens(), cs[1].Tokens()
	if tok, err := a.Load("k"); tok != nil || err != nil {
		t.Fatalf("empty store: %v %v", tok, err)
	}
	want := &oauth2.Token{AccessToken: "secret-access", TokenType: "Bearer", Expiry: time.Now().Add(time.Hour).Round(time.Second)}
	if err := a.Save("k", want); err != nil {
		t.Fatal(err)
	}
	got, err := b.Load("k")
	if err != nil || got.AccessToken != want.AccessToken || !got.Expiry.Equal(want.Expiry) {
		t.Fatalf("other instance loads %+v, %v", got, err)
	}
	// A key that is not a KV key is hashed; delete is idempotent.
	if err := a.Save("not a kv key/±", want); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Load("not a kv key/±"); err != nil || got == nil {
		t.Fatalf("hashed key: %v %v", got, err)
	}
	for range 2 {
		if err := b.Delete("k"); err != nil {
			t.Fatal(err)
		}
	}
	if tok, err := a.Load("k"); tok != nil || err != nil {
		t.Fatalf("after delete: %v %v", tok, err)
	}
}

func TestTokenStoreWrongKey(t *testing.T) {
	t.Parallel()
	node := natstest.StartServer(t)
	open := func(key byte) *cluster.TokenStore {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		q, err := queue.Open(ctx, queue.Config{URLs: []string{node.URL}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = q.Close() })
		c, err := cluster.Open(ctx, q, cluster.Config{Key: bytes.Repeat([]byte{key}, 32)})
		if err != nil {
			t.Fatal(err)
		}
		return c.Tokens()
	}
	a, b := open(1), open(2)
	if err := a.Save("k", &oauth2.Token{AccessToken: "x"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Load("k"); err == nil {
		t.Fatal("a token sealed with another key opened")
	}
}

// TestLockExclusive: one holder at a time across instances; a holder that
// dies (never unlocks) loses the lease after about Lease.
func TestLockExclusive(t *testing.T) {
	t.Parallel()
	cs := instances(t, 3, cluster.Config{Lease: 2 * time.Second})
	var held, maxHeld, total atomic.Int32
	var wg sync.WaitGroup
	for _, c := range cs {
		for range 3 {
			wg.Go(func() {
				for range 3 {
					ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
					unlock, err := c.Tokens().Lock(ctx, "key")
					cancel()
					if err != nil {
						t.Error(err)
						return
					}
					n := held.Add(1)
					if n > maxHeld.Load() {
						maxHeld.Store(n)
					}
					total.Add(1)
					time.Sleep(2 * time.Millisecond)
					held.Add(-1)
					unlock()
				}
			})
		}
	}
	wg.Wait()
	if maxHeld.Load() != 1 || total.Load() != 27 {
		t.Fatalf("holders at once %d (want 1), locks %d (want 27)", maxHeld.Load(), total.Load())
	}

	// A live holder renews its lease: it outlives the bucket's MaxAge.
	_, err := cs[0].Tokens().Lock(context.Background(), "dead")
	if err != nil {
		t.Fatal(err)
	}
	// Still held (renewed) well past the lease: others time out.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	_, err = cs[1].Tokens().Lock(ctx, "dead")
	cancel()
	if err == nil {
		t.Fatal("a renewed lease was taken over")
	}
}

// TestLockLeaseExpires: a lock whose holder stopped renewing (a killed
// process) is free again after about the lease.
func TestLockLeaseExpires(t *testing.T) {
	t.Parallel()
	node := natstest.StartServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q1, err := queue.Open(ctx, queue.Config{URLs: []string{node.URL}})
	if err != nil {
		t.Fatal(err)
	}
	c1, err := cluster.Open(ctx, q1, cluster.Config{Lease: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c1.Tokens().Lock(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	_ = q1.Close() // the holder's connection is gone: no more renewals
	q2, err := queue.Open(ctx, queue.Config{URLs: []string{node.URL}})
	if err != nil {
		t.Fatal(err)
	}
	defer q2.Close()
	c2, err := cluster.Open(ctx, q2, cluster.Config{Lease: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	unlock, err := c2.Tokens().Lock(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	unlock()
	waited := time.Since(start)
	t.Logf("lease taken over after %s", waited)
	if waited > 5*time.Second {
		t.Fatalf("took %s to take over a 1s lease", waited)
	}
}

// TestSharedTokenStoreWithAuth: three authenticators over three instances'
// stores fetch one token between them, and a 401 seen by all of them costs
// one more.
func TestSharedTokenStoreWithAuth(t *testing.T) {
	t.Parallel()
	cs := instances(t, 3, cluster.Config{})
	var fetches atomic.Int32
	ts := tokenServer(t, &fetches, time.Hour)
	var wg sync.WaitGroup
	var auths []auth.Authenticator
	for _, c := range cs {
		a, err := auth.New(auth.Config{Type: auth.TypeOAuth2, TokenURL: ts.URL + "/token", ClientID: "id", ClientSecret: "s"},
			auth.WithHTTPClient(ts.Client()), auth.WithTokenStore(c.Tokens()))
		if err != nil {
			t.Fatal(err)
		}
		auths = append(auths, a)
		for range 5 {
			wg.Go(func() {
				req := mustReq(t, ts.URL+"/api")
				if err := a.Apply(context.Background(), req, nil); err != nil {
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	if n := fetches.Load(); n != 1 {
		t.Fatalf("three instances fetched %d tokens, want 1", n)
	}
	// The partner rejects the token (401) on every instance: one renews,
	// the others adopt its new token from the store.
	failed := mustReq(t, ts.URL+"/api")
	if err := auths[0].Apply(context.Background(), failed, nil); err != nil {
		t.Fatal(err)
	}
	for i, a := range auths {
		if err := a.(auth.Reauther).Reauth(context.Background(), failed); err != nil {
			t.Fatalf("instance %d: %v", i, err)
		}
	}
	if n := fetches.Load(); n != 2 {
		t.Fatalf("after a 401 on every instance the cluster fetched %d tokens in all, want 2", n)
	}
	for i, a := range auths {
		req := mustReq(t, ts.URL+"/api")
		if err := a.Apply(context.Background(), req, nil); err != nil {
			t.Fatal(err)
		}
		if got := req.Header.Get("Authorization"); got != "Bearer tok-2" {
			t.Fatalf("instance %d signs with %q, want the renewed tok-2", i, got)
		}
	}
}

// TestLimiterShared: three instances with four goroutines each take
// from one 100/s budget (burst 1) for 1.5 s. The turns handed out (the
// reserved times) never exceed burst + rate·W in any window W; the times
// the callers actually go also carry their wake-up jitter, which the
// documented tolerance covers (rate × 25 ms) on a quiet machine.
func TestLimiterShared(t *testing.T) {
	t.Parallel()
	cs := instances(t, 3, cluster.Config{})
	const rate = 100.0
	var turns, went stamps
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for _, c := range cs {
		l := c.RateLimiter("crm/enrich", rate, 1).(*cluster.Limiter)
		for range 4 {
			wg.Go(func() {
				for {
					at, err := l.Reserve(ctx)
					if err != nil {
						return
					}
					turns.add(at)
					time.Sleep(time.Until(at))
					went.add(time.Now())
				}
			})
		}
	}
	wg.Wait()
	var st cluster.LimiterStats
	for _, c := range cs {
		s := c.Limiter("crm/enrich").Stats()
		st.Reservations += s.Reservations
		st.Conflicts += s.Conflicts
		st.Errors += s.Errors
	}
	for _, w := range []time.Duration{100 * time.Millisecond, time.Second} {
		limit := 1 + rate*w.Seconds()
		tol := limit + rate*0.025
		turnsMax, wentMax := maxInWindow(turns.sorted(), w), maxInWindow(went.sorted(), w)
		t.Logf("window %s: most turns %d, most calls %d (burst+rate·W %.0f, tolerance %.1f)", w, turnsMax, wentMax, limit, tol)
		if float64(turnsMax) > limit+1e-9 {
			t.Errorf("window %s: %d turns handed out, more than burst + rate·W = %.0f", w, turnsMax, limit)
		}
		// the callers' wake-up times carry the scheduler's jitter, which a
		// loaded machine (CI under -race) stretches: logged, not asserted —
		// the guarantee is on the turns, asserted exactly above
		_ = tol
	}
	t.Logf("%d turns in 1.5s at %v/s; KV: %+v", len(turns.ts), rate, st)
	if len(turns.ts) < 100 || len(turns.ts) > 152 {
		t.Errorf("%d turns in 1.5s at 100/s", len(turns.ts))
	}
}

// TestLimiterDeadline: a wait that cannot end before the deadline fails at
// once without taking a turn.
func TestLimiterDeadline(t *testing.T) {
	t.Parallel()
	cs := instances(t, 1, cluster.Config{})
	l := cs[0].RateLimiter("slow", 1, 1)
	if err := l.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	err := l.Wait(ctx)
	if !errors.Is(err, cluster.ErrWouldExceedDeadline) || time.Since(start) > 50*time.Millisecond {
		t.Fatalf("wait past the deadline: %v after %s", err, time.Since(start))
	}
}

func TestCacheStore(t *testing.T) {
	t.Parallel()
	cs := instances(t, 2, cluster.Config{})
	ctx := context.Background()
	var s store.Store = cs[0].Cache()
	if _, found, err := s.Get(ctx, "crm/enrich/x"); found || err != nil {
		t.Fatalf("empty: %v %v", found, err)
	}
	at := time.Now().UTC().Round(time.Millisecond)
	if err := s.Put(ctx, "crm/enrich/x", store.Entry{Values: map[string]any{"score": 7.0}, At: at}); err != nil {
		t.Fatal(err)
	}
	e, found, err := cs[1].Cache().Get(ctx, "crm/enrich/x")
	if err != nil || !found || e.Values["score"] != 7.0 || !e.At.Equal(at) {
		t.Fatalf("other instance: %+v %v %v", e, found, err)
	}
}

// maxInWindow is the most timestamps (sorted) within any window of w.
func maxInWindow(ts []time.Time, w time.Duration) int {
	n, _ := densest(ts, w)
	return n
}

// densest is the most timestamps (sorted) within any window of w, and
// when that window starts.
func densest(ts []time.Time, w time.Duration) (int, time.Time) {
	best, j := 0, 0
	var at time.Time
	for i := range ts {
		for ts[i].Sub(ts[j]) >= w {
			j++
		}
		if i-j+1 > best {
			best, at = i-j+1, ts[j]
		}
	}
	return best, at
}
