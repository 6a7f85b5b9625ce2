package cli

import (
	"io"
	"reflect"
	"testing"
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

func TestHistogramPercentiles(t *testing.T) {
	var h histogram
	if got := percentiles(&h); got != "n/a" {
		t.Fatalf("empty: %q", got)
	}
}
