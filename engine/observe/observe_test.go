package observe

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/plumbhq/plumb/engine"
)

// TestSeesEveryTry: the function gets each try of a retried step, whole,
// with the rule that matched and the timing, and the secret header masked.
func TestSeesEveryTry(t *testing.T) {
	n := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n++
		if n == 1 {
			w.WriteHeader(503)
			return
		}
		io.WriteString(w, `{"ok":true}`)
	}))
	defer srv.Close()
	var seen []*engine.Exchange
	src := "version: 1\nname: ob\nsettings: { base_url: {}, key: { secret: true } }\nsteps:\n  - name: s\n    request: { url: \"{{settings.base_url}}/x\", headers: { X-Key: \"{{settings.key}}\" } }\n    retry: [ { on: [503], action: retry, backoff: { initial: 1ms, max: 1ms } } ]\n"
	p, err := engine.Parse("ob.yaml", []byte(src), engine.WithEvents(New(func(_ context.Context, ex *engine.Exchange) { seen = append(seen, ex) })))
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Bind(engine.Config{Values: map[string]any{"base_url": srv.URL, "key": "k3y-s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if res := r.Run(context.Background(), nil); res.Outcome != engine.Success {
		t.Fatalf("%s %q", res.Outcome, res.Reason)
	}
	if len(seen) != 2 || seen[0].Status != 503 || seen[0].Action == "" || seen[1].Status != 200 || seen[1].Action != "" ||
		seen[1].Attempt != 2 || seen[1].ResponseBody != `{"ok":true}` || seen[1].Timing.Total <= 0 {
		t.Fatalf("exchanges %+v", seen)
	}
	if got := seen[0].RequestHeader.Get("X-Key"); got != "****" {
		t.Fatalf("secret header shown as %q", got)
	}
}
