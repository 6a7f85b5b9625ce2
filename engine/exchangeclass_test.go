package engine_test

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/engine/observe"
)

// TestExchangeClass: an observed try that had no answer says why by its
// kind (the console records a timeout or a connection error from it, not
// from the error's text); a try with an answer has no class.
func TestExchangeClass(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/hang" {
			<-r.Context().Done()
			return
		}
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	for _, c := range []struct {
		url  string
		want engine.Class
	}{
		{srv.URL + "/ok", ""},
		{srv.URL + "/hang", engine.ClassTimeout},
		{dead + "/x", engine.ClassConnection},
	} {
		var mu sync.Mutex
		var got []*engine.Exchange
		src := "version: 1\nname: x\nsteps:\n  - name: s\n    timeout: 50ms\n    request: { url: \"" + c.url + "\" }\n    retry: [ { on: [timeout, connection], action: fail } ]\n"
		p := mustParse(t, src, engine.WithEvents(observe.New(func(_ context.Context, ex *engine.Exchange) {
			mu.Lock()
			got = append(got, ex)
			mu.Unlock()
		})))
		r := mustBind(t, p, nil)
		r.Run(context.Background(), map[string]any{})
		r.Close(context.Background())
		mu.Lock()
		if len(got) != 1 || got[0].Class != c.want {
			t.Errorf("%s: exchanges %+v, want one of class %q", c.url, got, c.want)
		}
		mu.Unlock()
	}
}
