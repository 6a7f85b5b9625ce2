package template

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// The templates of a Set share its function table: compiling one costs
// its parse trees (about 6 KB; 14 KB under -race), not copies of the
// function table (169 KB a template when each had its own, which made
// most of a plan's live heap). Bytes are counted with TotalAlloc, which a
// GC does not change.
func TestCompileSharesFunctions(t *testing.T) {
	s := New()
	const n = 50
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for i := range n {
		// one action: the typed-value copy is compiled too
		if _, err := s.Compile(fmt.Sprintf("t%d", i), "{{ lead.email | lower }}", JSON); err != nil {
			t.Fatal(err)
		}
	}
	runtime.ReadMemStats(&after)
	if per := (after.TotalAlloc - before.TotalAlloc) / n; per > 40<<10 {
		t.Fatalf("compiling a template allocated %d bytes: the function table is copied again", per)
	}
	if got := len(s.base.Templates()); got != 2*n {
		t.Fatalf("the shared namespace holds %d templates, want %d", got, 2*n)
	}
}

// A transient template leaves nothing in the Set, however often it is
// compiled, and still renders and reports errors under its own name.
func TestTransientLeavesNothing(t *testing.T) {
	s := New()
	for range 20 {
		tm, err := s.Compile("origin", "{{settings.base_url}}/x/{{lead.id}}", URL, Transient())
		if err != nil {
			t.Fatal(err)
		}
		out, err := tm.Render(map[string]any{"settings": map[string]any{"base_url": "https://a.example"}, "lead": map[string]any{"id": 7}})
		if err != nil || out != "https://a.example/x/7" {
			t.Fatalf("Render = %q, %v", out, err)
		}
	}
	if got := len(s.base.Templates()); got != 0 {
		t.Fatalf("transient compiles left %d templates in the set", got)
	}
	_, err := s.Compile("origin", "{{ lead.x | nosuchfunc }}", Plain, Transient())
	var ce *Error
	if !errors.As(err, &ce) || ce.Name != "origin" || ce.Line != 1 {
		t.Fatalf("compile error = %#v", err)
	}
}

// Errors name the template as given, never its name in the namespace.
func TestErrorsNameTheTemplate(t *testing.T) {
	s := New()
	s.slow = true // through text/template, whose errors carry the namespace name
	for _, src := range []string{"{{ lead.x.y }}", "a {{ lead.x.y }} b", "{{ lead.n | int | div 1 }}"} {
		tm, err := s.Compile("steps.a.url", src, Plain)
		if err != nil {
			t.Fatal(err)
		}
		_, rerr := tm.Render(map[string]any{"lead": map[string]any{"x": 1, "n": 0}})
		v, verr := tm.Value(map[string]any{"lead": map[string]any{"x": 1, "n": 0}})
		for _, e := range []error{rerr, verr} {
			if e == nil {
				t.Fatalf("%s: no error (value %v)", src, v)
			}
			if msg := e.Error(); !startsWith(msg, "template steps.a.url") || containsAny(msg, `"t1`, " t1", "~value") {
				t.Errorf("%s: error %q", src, msg)
			}
		}
	}
	_, err := s.Compile("steps.b.url", "{{ lead.x | nosuchfunc }}", Plain)
	var ce *Error
	if !errors.As(err, &ce) || ce.Name != "steps.b.url" || ce.Line != 1 {
		t.Fatalf("compile error = %#v", err)
	}
}

// Compiling and rendering in one Set from many goroutines at once is safe
// (run with -race).
func TestCompileConcurrently(t *testing.T) {
	s := New()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 20 {
				tm, err := s.Compile("c", fmt.Sprintf("{{ lead.v | add %d }}-%d", g, i), Plain)
				if err != nil {
					t.Error(err)
					return
				}
				want := fmt.Sprintf("%d-%d", 1+g, i)
				if out, err := tm.Render(map[string]any{"lead": map[string]any{"v": 1}}); err != nil || out != want {
					t.Errorf("Render = %q, %v; want %q", out, err, want)
				}
			}
		})
	}
	wg.Wait()
}

func startsWith(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		for i := 0; i+len(sub) <= len(s); i++ {
			if s[i:i+len(sub)] == sub {
				return true
			}
		}
	}
	return false
}
