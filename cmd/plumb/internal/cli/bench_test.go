package cli

import (
	"io"
	"reflect"
	"regexp"
	"testing"
	"time"
)

func TestSyntheticLeads(t *testing.T) {
	tests := []struct {
		name string
		tmpl map[string]any
		want []map[string]any
	}{
		{"email tag and id", map[string]any{"email": "jane+x@a.example", "id": "abc", "n": 1.0, "tags": []any{"t"}},
			[]map[string]any{
				{"email": "jane+1@a.example", "id": "1", "n": 1.0, "tags": []any{"t"}},
				{"email": "jane+2@a.example", "id": "2", "n": 1.0, "tags": []any{"t"}},
			}},
		{"numeric id, no email", map[string]any{"id": 7.0, "email": 3.0},
			[]map[string]any{{"id": 1.0, "email": 3.0}, {"id": 2.0, "email": 3.0}}},
		{"placeholder anywhere", map[string]any{"email": "x@y.example", "ref": map[string]any{"ids": []any{"r-{{n}}", 5.0}}},
			[]map[string]any{
				{"email": "x@y.example", "ref": map[string]any{"ids": []any{"r-1", 5.0}}},
				{"email": "x@y.example", "ref": map[string]any{"ids": []any{"r-2", 5.0}}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &syntheticLeads{tmpl: tt.tmpl, n: len(tt.want)}
			for i, want := range tt.want {
				it, err := src.Next()
				if err != nil || it.index != i+1 || !reflect.DeepEqual(it.lead, want) {
					t.Fatalf("lead %d = %d %v, %v; want %v", i+1, it.index, it.lead, err, want)
				}
			}
			if _, err := src.Next(); err != io.EOF {
				t.Fatalf("after %d leads: %v, want EOF", len(tt.want), err)
			}
		})
	}
	// the template itself is never modified
	tmpl := map[string]any{"email": "a@b.example", "o": map[string]any{"k": "{{n}}"}}
	src := &syntheticLeads{tmpl: tmpl, n: 1}
	it, _ := src.Next()
	it.lead["o"].(map[string]any)["k"] = "changed"
	if tmpl["o"].(map[string]any)["k"] != "{{n}}" {
		t.Fatal("the template was modified")
	}
}

// TestHistogramPercentiles checks the p50/p95/p99 line plumb bench and
// plumb run print: each value read back is within 2% of the true
// percentile, for a uniform and a skewed (slow tail) distribution.
func TestHistogramPercentiles(t *testing.T) {
	var h histogram
	if got := percentiles(&h); got != "n/a" {
		t.Fatalf("empty: %q", got)
	}
	ms := time.Millisecond
	for _, c := range []struct {
		name          string
		fill          func(*histogram)
		p50, p95, p99 time.Duration
	}{
		{"uniform 1..100ms", func(h *histogram) {
			for i := 1; i <= 100; i++ {
				h.add(time.Duration(i) * ms)
			}
		}, 50 * ms, 95 * ms, 99 * ms},
		{"slow tail", func(h *histogram) {
			for i := range 1000 {
				d := 2 * ms
				if i%50 == 0 { // 20 of 1000
					d = 3 * time.Second
				}
				h.add(d)
			}
		}, 2 * ms, 2 * ms, 3 * time.Second},
		{"microseconds", func(h *histogram) {
			for i := 1; i <= 10; i++ {
				h.add(time.Duration(i*100) * time.Microsecond)
			}
		}, 500 * time.Microsecond, time.Millisecond, time.Millisecond},
	} {
		t.Run(c.name, func(t *testing.T) {
			var h histogram
			c.fill(&h)
			line := percentiles(&h)
			m := regexp.MustCompile(`^p50 (\S+), p95 (\S+), p99 (\S+)$`).FindStringSubmatch(line)
			if m == nil {
				t.Fatalf("line %q", line)
			}
			for i, want := range []time.Duration{c.p50, c.p95, c.p99} {
				got, err := time.ParseDuration(m[i+1])
				if err != nil {
					t.Fatalf("%q: %v", line, err)
				}
				// 2% for the buckets, a little more for the rounding to
				// three digits
				if lo, hi := float64(want)*0.99, float64(want)*1.03; float64(got) < lo || float64(got) > hi {
					t.Errorf("%s: %v, want %v within 2%%", []string{"p50", "p95", "p99"}[i], got, want)
				}
			}
		})
	}
}
