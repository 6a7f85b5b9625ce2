package source

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"testing"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/parse"
	"github.com/plumbhq/plumb/steps"
)

// TestPaginationKinds: every paginate.type the format declares
// (steps.PaginateTypes) has its kind and its own paginator type, and
// every kind is a type the format declares: adding a type in one place
// only fails here.
func TestPaginationKinds(t *testing.T) {
	types := map[string]bool{}
	for _, typ := range steps.PaginateTypes.Values() {
		k := paginationOf(typ)
		if k == onePage || k.String() != string(typ) {
			t.Errorf("paginate.type %q: kind %v", typ, k)
			continue
		}
		pager := compilePager(&steps.Source{Paginate: &steps.Paginate{Type: steps.String{Value: string(typ)}, Size: 10,
			Cursor: &steps.Locator{JSON: "next"}, Next: &steps.Locator{JSON: "next"}}}, nextLocator(t))
		name := fmt.Sprintf("%T", pager)
		if name == fmt.Sprintf("%T", onePager{}) || types[name] {
			t.Errorf("paginate.type %q: paginator %s (shared with another kind)", typ, name)
		}
		types[name] = true
	}
	for k := byNumber; k < paginations; k++ {
		if !steps.PaginateTypes.Has(steps.PaginateType(k.String())) {
			t.Errorf("kind %d (%s) is not a paginate.type of the format", k, k)
		}
	}
	if got := compilePager(&steps.Source{}, nil); got != (onePager{}) {
		t.Errorf("no paginate: %T", got)
	}
}

// nextLocator is the locator { json: next }, as engine.Load compiles it.
func nextLocator(t *testing.T) parse.Extractor {
	t.Helper()
	e, err := parse.Compile(parse.Spec{JSON: "next"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestPageFieldsAreThePagers: the page.* fields the engine lets a source's
// templates and stop_when read (steps.PageFields) are the ones each pager
// sets, with and without a size.
func TestPageFieldsAreThePagers(t *testing.T) {
	for _, typ := range append(steps.PaginateTypes.Values(), "") {
		for _, size := range []int{0, 10} {
			var pg *steps.Paginate
			if typ != "" {
				pg = &steps.Paginate{Type: steps.String{Value: string(typ)}, Size: size}
			}
			var got []string
			for k := range compilePager(&steps.Source{Paginate: pg}, nil).first() {
				got = append(got, k)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(steps.PageFields(pg)))
			if !slices.Equal(got, want) {
				t.Errorf("paginate %q size %d: the pager sets %v, steps.PageFields says %v", typ, size, got, want)
			}
		}
	}
}

// TestPaginators: where each kind starts, goes after a page (a short
// page moves an offset by its records, not its size) and skips a page.
func TestPaginators(t *testing.T) {
	compile := func(typ string, start *int, size int) paginator {
		t.Helper()
		return compilePager(&steps.Source{Paginate: &steps.Paginate{Type: steps.String{Value: string(typ)}, Start: start, Size: size,
			Cursor: &steps.Locator{JSON: "next"}, Next: &steps.Locator{JSON: "next"}}}, nextLocator(t))
	}
	page := &engine.Page{Status: 200, Header: http.Header{"Link": {`</p?after=9>; rel="next"`}}, Body: []byte(`{"next":"c9"}`)}
	five := 5
	for _, c := range []struct {
		pager             paginator
		first, next, skip string
	}{
		{onePager{}, "map[]", "{page:map[] url: token: none:true}", "map[] false"},
		{compile("page", nil, 0), "map[number:1]", "{page:map[number:2] url: token: none:false}", "map[number:2] true"},
		{compile("page", &five, 25), "map[number:5 size:25]", "{page:map[number:6 size:25] url: token: none:false}", "map[number:6 size:25] true"},
		{compile("offset", nil, 25), "map[limit:25 offset:0]", "{page:map[limit:25 offset:7] url: token: none:false}", "map[limit:25 offset:25] true"},
		{compile("offset", &five, 25), "map[limit:25 offset:5]", "{page:map[limit:25 offset:12] url: token: none:false}", "map[limit:25 offset:30] true"},
		{compile("cursor", nil, 0), "map[cursor:]", "{page:map[cursor:c9] url: token:c9 none:false}", "map[] false"},
		{compile("next_url", nil, 0), "map[]", "{page:map[] url:c9 token:c9 none:false}", "map[] false"},
		{compile("link", nil, 0), "map[]", "{page:map[] url:/p?after=9 token:/p?after=9 none:false}", "map[] false"},
	} {
		first := c.pager.first()
		next, err := c.pager.next(page, first, 7, followed{})
		skip, ok := c.pager.skip(first)
		if got := fmt.Sprint(first); got != c.first {
			t.Errorf("%T first %s, want %s", c.pager, got, c.first)
		}
		if got := fmt.Sprintf("%+v", next); err != nil || got != c.next {
			t.Errorf("%T next %s (%v), want %s", c.pager, got, err, c.next)
		}
		if got := fmt.Sprint(skip, " ", ok); got != c.skip {
			t.Errorf("%T skip %s, want %s", c.pager, got, c.skip)
		}
	}
	// a token followed again loops
	seen := followed{}
	p := compile("cursor", nil, 0)
	if _, err := p.next(page, nil, 1, seen); err != nil {
		t.Fatal(err)
	}
	if _, err := p.next(page, nil, 1, seen); !errors.Is(err, ErrLoop) || err.Error() != `the next cursor "c9" was already followed: pagination repeats itself (stopped rather than loop)` {
		t.Errorf("loop: %v", err)
	}
	// no token: no page after it
	if f, err := p.next(&engine.Page{Status: 200, Body: []byte(`{}`)}, nil, 1, seen); err != nil || !f.none {
		t.Errorf("no cursor: %+v %v", f, err)
	}
}

// TestRecentPagesBounded: the pages remembered for finding a cycle are the
// last recentWindow, whatever the sync's length.
func TestRecentPagesBounded(t *testing.T) {
	var r recentPages
	for n := 1; n <= 3*recentWindow; n++ {
		r.add(uint64(n), n)
	}
	if len(r.at) != recentWindow || len(r.order) != recentWindow {
		t.Fatalf("%d hashes and %d in order remembered, want %d", len(r.at), len(r.order), recentWindow)
	}
	if _, ok := r.page(uint64(2 * recentWindow)); ok {
		t.Fatal("a page past the window is remembered")
	}
	if n, ok := r.page(uint64(3 * recentWindow)); !ok || n != 3*recentWindow {
		t.Fatalf("the last page: %d %v", n, ok)
	}
}
