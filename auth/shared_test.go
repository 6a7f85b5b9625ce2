package auth_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/auth"
	"github.com/plumbhq/plumb/internal/oauthtest"
)

// sharedStore is a SharedTokenStore in memory, as a cluster KV would be:
// one lock per key.
type sharedStore struct {
	auth.MemoryStore
	mu    sync.Mutex
	locks map[string]*sync.Mutex
}

func (s *sharedStore) Lock(ctx context.Context, key string) (func(), error) {
	s.mu.Lock()
	if s.locks == nil {
		s.locks = map[string]*sync.Mutex{}
	}
	l := s.locks[key]
	if l == nil {
		l = &sync.Mutex{}
		s.locks[key] = l
	}
	s.mu.Unlock()
	l.Lock()
	return l.Unlock, nil
}

// TestSharedStoreOneFetchForTheCluster: three authenticators (three
// instances of a cluster) over one SharedTokenStore fetch one token
// between them; a 401 seen by one is renewed once and the others adopt
// the new token from the store without fetching.
func TestSharedStoreOneFetchForTheCluster(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{})
	st := &sharedStore{}
	var instances []auth.Authenticator
	for range 3 {
		a, err := auth.New(ccConfig(o), auth.WithHTTPClient(o.Client()), auth.WithTokenStore(st))
		if err != nil {
			t.Fatal(err)
		}
		instances = append(instances, a)
	}
	var wg sync.WaitGroup
	for _, a := range instances {
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				req, _ := http.NewRequest(http.MethodGet, o.APIURL(), nil)
				if err := a.Apply(context.Background(), req, nil); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	if n := o.TokenRequests(); n != 1 {
		t.Fatalf("the cluster fetched %d tokens, want 1", n)
	}
	// instance 0 sees a 401: one renewal; instances 1 and 2, holding the
	// old token, reauth too and adopt the new one from the store
	failed, _ := send(t, instances[0], o.APIURL())
	o.Revoke(strings.TrimPrefix(failed.Header.Get("Authorization"), "Bearer "))
	for _, a := range instances {
		if err := a.(auth.Reauther).Reauth(context.Background(), failed); err != nil {
			t.Fatal(err)
		}
	}
	if n := o.TokenRequests(); n != 2 {
		t.Fatalf("after one revoked token the cluster fetched %d tokens in all, want 2", n)
	}
	for i, a := range instances {
		if _, status := send(t, a, o.APIURL()); status != http.StatusOK {
			t.Fatalf("instance %d: status %d with the shared token", i, status)
		}
	}
}

// TestSharedStoreShortLivedToken: an instance that picks a short-lived
// token (8 s) up from the shared store uses it, instead of renewing it at
// once because it expires within the usual 10 s early-refresh margin.
func TestSharedStoreShortLivedToken(t *testing.T) {
	o := oauthtest.New(t, oauthtest.Options{AccessExp: 8 * time.Second})
	st := &sharedStore{}
	a, err := auth.New(ccConfig(o), auth.WithHTTPClient(o.Client()), auth.WithTokenStore(st))
	if err != nil {
		t.Fatal(err)
	}
	b, err := auth.New(ccConfig(o), auth.WithHTTPClient(o.Client()), auth.WithTokenStore(st))
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range []auth.Authenticator{a, b, a, b} {
		req, _ := http.NewRequest(http.MethodGet, o.APIURL(), nil)
		if err := x.Apply(context.Background(), req, nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := o.TokenRequests(); n != 1 {
		t.Fatalf("two instances fetched %d tokens for one 8s token, want 1", n)
	}
}
