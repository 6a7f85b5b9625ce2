package source

import (
	"fmt"
	"slices"
	"testing"

	"github.com/plumbhq/plumb/steps"
)

// TestPaginationKinds: every paginate.type the format declares
// (steps.PaginateTypes) has its kind and its own paginator type, and
// every kind is a type the format declares: adding a type in one place
// only fails here.
func TestPaginationKinds(t *testing.T) {
	types := map[string]bool{}
	for _, typ := range steps.PaginateTypes {
		k := paginationOf(typ)
		if k == onePage || k.String() != typ {
			t.Errorf("paginate.type %q: kind %v", typ, k)
			continue
		}
		pager := compilePager(&steps.Source{Paginate: &steps.Paginate{Type: steps.String{Value: typ}, Size: 10,
			Cursor: &steps.Locator{JSON: "next"}, Next: &steps.Locator{JSON: "next"}}}, &steps.ErrorList{})
		name := fmt.Sprintf("%T", pager)
		if name == fmt.Sprintf("%T", onePager{}) || types[name] {
			t.Errorf("paginate.type %q: paginator %s (shared with another kind)", typ, name)
		}
		types[name] = true
	}
	for k := byNumber; k < paginations; k++ {
		if !slices.Contains(steps.PaginateTypes, k.String()) {
			t.Errorf("kind %d (%s) is not a paginate.type of the format", k, k)
		}
	}
	if got := compilePager(&steps.Source{}, &steps.ErrorList{}); got != (onePager{}) {
		t.Errorf("no paginate: %T", got)
	}
}
