package oauthflow_test

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/internal/oauthtest"
	"github.com/plumbhq/plumb/internal/testkit"
)

// connect logs the crm integration in through start → partner →
// callback, as a browser does.
func (e *env) connect() {
	e.t.Helper()
	b := browser()
	cb, _ := e.authorize(b)
	if resp, body := e.get(b, cb); resp.StatusCode != http.StatusOK {
		e.t.Fatalf("callback: %d %s", resp.StatusCode, body)
	}
}

// TestRevokedGrantNewLogin reproduces issue 26.4 against a real OAuth2
// server: the partner revokes the grant; of 10 leads (run together) after
// the access token expired, exactly one refresh reaches the token server
// and is refused; every lead fails with class auth and a reason saying a
// new login is needed; /status shows the login needs action, with the
// reason and when; a new login through /start → callback makes the next
// lead succeed in the same runner, without a restart or a refresh.
func TestRevokedGrantNewLogin(t *testing.T) {
	e := newEnv(t)
	clk := testkit.NewManualClock(e.clk.Now()) // the flow's clock and the runner's move together
	plan, err := engine.Parse("crm.yaml", []byte(crmYAML), engine.WithClock(clk))
	if err != nil {
		t.Fatal(err)
	}
	r, err := plan.Bind(engine.Config{
		Values: map[string]any{"auth_url": e.o.AuthURL(), "token_url": e.o.TokenURL(), "api_url": e.o.APIURL(), "client_secret": oauthtest.ClientSecret},
		Tokens: e.store, LoginHint: "log in through the service's /v1/oauth/crm/start",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	e.connect()
	if res := r.Run(context.Background(), map[string]any{}); res.Outcome != engine.Success {
		t.Fatalf("after the login: %s %s", res.Outcome, res.Reason)
	}
	first, _ := e.store.Load(e.key())

	e.o.RevokeGrant(first.RefreshToken)
	clk.Advance(2 * time.Hour)
	e.clk.Add(2 * time.Hour)
	refusedAt := clk.Now()
	results := make([]*engine.Result, 10)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() { results[i] = r.Run(context.Background(), map[string]any{}) })
	}
	wg.Wait()
	for i, res := range results {
		if res.Outcome != engine.Error || res.Class != engine.ClassAuth || !strings.Contains(res.Reason, "a new login is needed") ||
			!strings.Contains(res.Reason, "/v1/oauth/crm/start") || !strings.Contains(res.Reason, "invalid_grant") {
			t.Fatalf("lead %d after the revocation: %s %s %s", i, res.Outcome, res.Class, res.Reason)
		}
	}
	if n, refused := e.o.GrantCount("refresh_token"), e.o.RefusedCount("refresh_token"); n != 1 || refused != 1 {
		t.Fatalf("10 leads sent %d refreshes to the token server (%d refused), want exactly 1", n, refused)
	}

	st := e.status()
	if st.LoggedIn || !st.NeedsLogin || !strings.Contains(st.Reason, "refused") || !strings.Contains(st.Reason, "/v1/oauth/crm/start") ||
		st.RefusedAt == nil || !st.RefusedAt.Equal(refusedAt) || st.Sections[0].LoggedIn || !st.Sections[0].NeedsLogin {
		t.Fatalf("status after the revocation: %+v", st)
	}

	e.connect() // a new login through the install flow
	if !strings.Contains(e.logs.String(), `"replaces_refused_login":true`) {
		t.Fatalf("log: %s", e.logs)
	}
	if st := e.status(); !st.LoggedIn || st.NeedsLogin || st.Reason != "" || st.RefusedAt != nil {
		t.Fatalf("status after the new login: %+v", st)
	}
	if res := r.Run(context.Background(), map[string]any{}); res.Outcome != engine.Success {
		t.Fatalf("the next lead after the new login: %s %s", res.Outcome, res.Reason)
	}
	if n := e.o.GrantCount("refresh_token"); n != 1 {
		t.Fatalf("refreshes = %d after the new login, want still 1", n)
	}
	second, _ := e.store.Load(e.key())
	var reasons strings.Builder
	for _, res := range results {
		reasons.WriteString(res.Reason)
	}
	e.bodies = append(e.bodies, reasons.String(), e.fileBytes())
	e.assertClean(first.AccessToken, first.RefreshToken, second.AccessToken, second.RefreshToken)
}

// A login is "needed" before the first one too, and the reason says where.
func TestStatusNeedsLoginBeforeTheFirst(t *testing.T) {
	e := newEnv(t)
	st := e.status()
	if st.LoggedIn || !st.NeedsLogin || !strings.Contains(st.Reason, "not logged in") || !strings.Contains(st.Reason, "/v1/oauth/crm/start") || st.RefusedAt != nil {
		t.Fatalf("status: %+v", st)
	}
}

// TestNewLoginWhileTheOldWorks: a second login through the install flow,
// while the first one's token is still valid, is used by the running
// runner from its next lead (the store's version moved): the old access
// token, revoked at the partner, is not sent again (one attempt, no 401
// and re-authentication).
func TestNewLoginWhileTheOldWorks(t *testing.T) {
	e := newEnv(t)
	e.connect()
	if res := e.runner.Run(context.Background(), map[string]any{}); res.Outcome != engine.Success {
		t.Fatalf("first login: %s %s", res.Outcome, res.Reason)
	}
	first, _ := e.store.Load(e.key())
	e.connect()
	e.o.Revoke(first.AccessToken)
	if res := e.runner.Run(context.Background(), map[string]any{}); res.Outcome != engine.Success || res.Steps[0].Attempts != 1 {
		t.Fatalf("after the second login: %s %s, %d attempts", res.Outcome, res.Reason, res.Steps[0].Attempts)
	}
}
