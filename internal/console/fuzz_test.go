package console_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// fuzzRunBound bounds one fuzzed request (a draft may retry with
// backoff, or wait on a DNS lookup that never answers); it is a limit,
// not a synchronisation: a run cut short sends less, and the properties
// hold either way.
const fuzzRunBound = 250 * time.Millisecond

// FuzzConsoleDraft drives the console's draft path — validate and run a
// draft of the partner or oauth integration, with its includes and
// setting overrides — in process, against real listeners, with the
// property: nothing outside --dir is read (no answer holds the canary of
// the files outside it, or of its files that are no fragments), and no
// stored secret leaves for a new origin (the other host's listener never
// gets one, in any form). In drafts and overrides $OTHER and $PARTNER are
// the two hosts' URLs, $OUT the outside directory and $REL the path from
// the integration's directory to it. Seeds: testdata/fuzz/FuzzConsoleDraft.
func FuzzConsoleDraft(f *testing.F) {
	s := newSecEnv(f)
	rel := s.plantOutside(f)
	expand := strings.NewReplacer("$OTHER", s.other.srv.URL, "$PARTNER", s.partner.srv.URL, "$OUT", s.outside, "$REL", rel).Replace
	f.Fuzz(func(t *testing.T, oauth bool, draft, overrides string) {
		if holdsSecret(draft+overrides, storedSecrets...) != "" {
			return // typed by the user: not a stored secret
		}
		id := "partner/integration.yaml"
		if oauth {
			id = "oauth/integration.yaml"
		}
		settings := map[string]string{}
		for _, line := range strings.Split(expand(overrides), "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				settings[k] = v
			}
		}
		body, _ := json.Marshal(map[string]any{"id": id, "yaml": expand(draft), "settings": settings,
			"lead": map[string]any{"email": "a@b.example", "host": "127.0.0.1", "x": true}})
		before := len(s.other.requests())
		for _, route := range []string{"validate", "run"} {
			ctx, cancel := context.WithTimeout(context.Background(), fuzzRunBound)
			req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/console/api/"+route, bytes.NewReader(body))
			req.Host = "127.0.0.1"
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Plumb-Console", "1")
			rec := httptest.NewRecorder()
			s.c.ServeHTTP(rec, req)
			cancel()
			if leak := holdsSecret(rec.Body.String(), canary); leak != "" {
				t.Fatalf("%s answered with a file outside --dir (%s):\n%s", route, leak, rec.Body)
			}
		}
		for _, got := range s.other.requests()[before:] {
			if leak := holdsSecret(got, storedSecrets...); leak != "" {
				t.Fatalf("the other host got the stored %s:\n%s", leak, got)
			}
		}
	})
}
