package webhook_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/plumbhq/plumb/webhook"
)

// A receiver verifies each delivery over its raw body before doing anything
// with it, answers 401 when verification fails, and keys dedupe on the
// event id. The sender side is Sign.
func Example() {
	cfg := webhook.Config{
		Preset:  webhook.PresetStandard,
		Secrets: []string{"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}, // newest first; add the old one while rotating
	}
	clock := func() time.Time { return time.Unix(1614265330, 0) }
	v, err := webhook.New(cfg, clock)
	if err != nil {
		panic(err)
	}

	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		ev, err := v.Verify(r.Header, body)
		if err != nil {
			http.Error(w, "invalid signature", webhook.HTTPStatus(err))
			fmt.Println("refused:", err)
			return
		}
		fmt.Printf("accepted %s %s, dedupe id %.16s…\n", ev.ID, ev.Type, webhook.DedupeKey("leads", ev.Key()))
	}))
	defer srv.Close()

	send := func(body string, tamper bool) {
		h, err := v.Sign([]byte(body), "msg_p5jXN8AQM9LWM0D4loKWxJek", time.Time{})
		if err != nil {
			panic(err)
		}
		if tamper {
			body += " "
		}
		req, _ := http.NewRequest(http.MethodPost, srv.URL, bytes.NewBufferString(body))
		for k, vs := range h {
			req.Header[k] = vs
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println("status", resp.StatusCode)
	}
	send(`{"type":"lead.created","data":{}}`, false)
	send(`{"type":"lead.created","data":{}}`, true)
	// Output:
	// accepted msg_p5jXN8AQM9LWM0D4loKWxJek lead.created, dedupe id 92f4c6e5c9f4dd15…
	// status 200
	// refused: webhook: bad signature: no signature matches any secret
	// status 401
}
