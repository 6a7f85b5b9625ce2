package template_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/plumbhq/plumb/template"
)

// Issue 25: nested loops driven by lead data burned cubic CPU (m=400: 16 s;
// m=10000 ran past 30 minutes). Each render has a budget; a loop that goes
// past it fails with a clear error after at most MaxSteps steps, which the
// test counts through a function called once per innermost iteration.
func TestRenderBudgetStopsRunawayLoops(t *testing.T) {
	var calls atomic.Int64
	count := template.WithFuncs(map[string]any{"count": func() string { calls.Add(1); return "" }})
	// The case under the default budget, then other shapes under a
	// smaller one (the same code, less waiting).
	const small = 5_000
	def, s := template.New(count), template.New(count, template.WithBudget(small, 0))
	if raceEnabled {
		def = s // a million steps take most of a minute under the race detector
	}
	tm, err := def.Compile("t", `{{range until (int lead.m)}}{{range until (int lead.m)}}{{range until (int lead.m)}}{{count}}{{end}}{{end}}{{end}}`, template.Plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tm.Render(map[string]any{"lead": map[string]any{"m": 10000}}); !errors.Is(err, template.ErrBudget) ||
		!strings.Contains(err.Error(), "render budget exceeded (more than ") {
		t.Fatalf("Render = %v, want a budget error", err)
	}
	if n := calls.Load(); n > template.MaxSteps || raceEnabled && n > small {
		t.Fatalf("the loop ran %d times, more than the budget", n)
	}
	big := make([]any, 3000)
	for i := range big {
		big[i] = i
	}
	lead := map[string]any{"m": 10000, "items": big, "s": "ab"}
	for _, src := range []string{
		`{{range until (int lead.m)}}{{range until (int lead.m)}}{{range until (int lead.m)}}{{count}}{{end}}{{end}}{{end}}`,
		`{{range $i := until (int lead.m)}}{{range $j := until (int lead.m)}}{{count}}{{end}}{{end}}`,
		`{{range lead.items}}{{range lead.items}}{{range lead.items}}{{count}}{{end}}{{end}}{{end}}`,
		`{{range (int lead.m)}}{{range (int lead.m)}}{{count}}{{end}}{{end}}`,
		`{{range untilStep 0 (int lead.m) 1}}{{range split " " (seq (int lead.m))}}{{count}}{{end}}{{end}}`,
		`{{range $i := until (int lead.m)}}{{if ge $i 0}}{{range until (int lead.m)}}{{count}}{{continue}}{{end}}{{end}}{{end}}`,
		`{{range until (int lead.m)}}{{range until (int lead.m)}}{{count}}{{range until (int lead.m)}}{{end}}{{end}}{{end}}`,
		`{{range until 200}}{{range until 200}}{{end}}{{end}}`, // iterations alone
		`{{range lead.items}}{{range lead.items}}{{else}}{{count}}{{end}}{{end}}`,
	} {
		calls.Store(0)
		tm, err := s.Compile("f.yaml:3:9", src, template.Plain)
		if err != nil {
			t.Fatalf("Compile(%s): %v", src, err)
		}
		out, err := tm.Render(map[string]any{"lead": lead})
		if !errors.Is(err, template.ErrBudget) || !strings.Contains(err.Error(), "render budget exceeded") ||
			!strings.HasPrefix(err.Error(), "template f.yaml:3:") {
			t.Errorf("Render(%s) = %d bytes, %v; want a budget error at the template", src, len(out), err)
		}
		if n := calls.Load(); n > small {
			t.Errorf("Render(%s): the loop ran %d times, more than the budget of %d steps", src, n, small)
		}
	}
}

// Work that grows without more steps: a value doubled in a loop, or a big
// value walked by a function that returns little, is counted by its size.
func TestRenderBudgetCountsWork(t *testing.T) {
	s := template.New(template.WithBudget(0, 4<<20))
	long := strings.Repeat("x", 1<<20)
	a, b := make([]any, 50000), make([]any, 50000)
	for i := range a {
		a[i], b[i] = "same", "same"
	}
	b[len(b)-1] = "other"
	// wa and wb hold the lists one level down: small at the top, big inside
	data := map[string]any{"lead": map[string]any{"n": 200, "long": long, "a": a, "b": b,
		"wa": map[string]any{"v": a}, "wb": map[string]any{"v": b}}}
	for _, src := range []string{
		`{{$x := "ab"}}{{range until (int lead.n)}}{{$x = cat $x $x}}{{end}}{{len $x}}`,
		`{{$x := list 1}}{{range until (int lead.n)}}{{$x = concat $x $x}}{{end}}{{len $x}}`,
		`{{range until 10000}}{{$h := lead.long | sha256sum}}{{end}}`,
		`{{$l := lead.long}}{{range until 10000}}{{$h := sha256sum $l}}{{end}}`,
		`{{range until 500}}{{$s := printf "%.0v" lead.wa}}{{end}}`,
		`{{range until 500}}{{if deepEqual lead.wa lead.wb}}{{end}}{{end}}`,
		`{{range until 200}}{{$x := repeat 1000000 "x"}}{{end}}`,
		`{{range until 10000}}{{$c := join "," lead.a | len}}{{end}}`,
	} {
		tm := mustCompile(t, s, src, template.Plain)
		out, err := tm.Render(data)
		if !errors.Is(err, template.ErrBudget) || !strings.Contains(err.Error(), "more than 4 MiB of values passed to functions") {
			t.Errorf("Render(%s) = %d bytes, %v; want a work budget error", src, len(out), err)
		}
	}
}

// The budget is per render and leaves ordinary templates alone: loops of
// thousands, values of megabytes.
func TestRenderBudgetIsPerRender(t *testing.T) {
	s := template.New(template.WithBudget(20_000, 0))
	tm := mustCompile(t, s, `{{range until 100}}{{range until 100}}{{end}}{{end}}{{ len (repeat 1000000 "x") }}`, template.Plain)
	for i := range 3 {
		if out, err := tm.Render(map[string]any{}); err != nil || out != "1000000" {
			t.Fatalf("render %d: %q, %v", i, out, err)
		}
	}
	v, err := mustCompile(t, s, `{{ deepCopy lead.l }}`, template.JSON).Value(map[string]any{"lead": map[string]any{"l": []any{1.0}}})
	if l, ok := v.([]any); err != nil || !ok || len(l) != 1 {
		t.Fatalf("deepCopy = %v, %v", v, err)
	}
}

// A render notices a cancelled context at its next loop iteration or
// function call: counted through a function that cancels at its 1000th
// call, no call runs after it.
func TestRenderStopsWhenCancelled(t *testing.T) {
	var calls atomic.Int64
	var stop context.CancelFunc // the render's, called at the 1000th call
	s := template.New(template.WithFuncs(map[string]any{"work": func() string {
		if calls.Add(1) == 1000 {
			stop()
		}
		return ""
	}}))
	for _, src := range []string{
		`{{range until 100}}{{range until 100}}{{work}}{{end}}{{end}}`,
		`{{range until 100}}{{range until 100}}{{$x := work}}{{end}}{{end}}`,
		`{{range until 100}}{{range until 100}}{{if work}}{{end}}{{end}}{{end}}`,
	} {
		calls.Store(0)
		ctx, cancel := context.WithCancel(context.Background())
		stop = cancel
		out, err := mustCompile(t, s, src, template.Plain).RenderContext(ctx, nil)
		cancel()
		if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "render stopped: context canceled") {
			t.Errorf("%s: RenderContext = %d bytes, %v; want context.Canceled", src, len(out), err)
		}
		if n := calls.Load(); n != 1000 {
			t.Errorf("%s: %d calls, want 1000 (none after the cancel)", src, n)
		}
	}
	// Already cancelled: the first step stops it, for Value too.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls.Store(0)
	tm := mustCompile(t, s, `{{range until 10}}{{work}}{{end}}`, template.Plain)
	if _, err := tm.RenderContext(ctx, nil); !errors.Is(err, context.Canceled) || calls.Load() != 0 {
		t.Errorf("cancelled: %v after %d calls", err, calls.Load())
	}
	one := mustCompile(t, s, `{{ list (work) (work) }}`, template.JSON)
	if _, err := one.ValueContext(ctx, nil); !errors.Is(err, context.Canceled) || calls.Load() > 1 {
		t.Errorf("Value cancelled: %v after %d calls", err, calls.Load())
	}
}
