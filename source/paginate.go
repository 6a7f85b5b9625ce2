package source

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/plumbhq/plumb/engine"
	"github.com/plumbhq/plumb/parse"
	"github.com/plumbhq/plumb/steps"
)

// pagination is a kind of paginate: section, read from paginate.type once
// by Compile; each kind has its paginator type.
type pagination uint8

const (
	onePage     pagination = iota // no paginate: section: one page
	byNumber                      // page: page.number, page.size
	byOffset                      // offset: page.offset, page.limit
	byCursor                      // cursor: page.cursor read from the page before
	byNextURL                     // next_url: the next page's URL read from the page before
	byLink                        // link: the Link rel="next" header of the page before
	paginations                   // the number of kinds
)

// types are the paginate.type of each kind, from the format's one
// declaration (steps.PaginateTypes).
var types = [paginations]steps.PaginateType{"", steps.PaginatePage, steps.PaginateOffset,
	steps.PaginateCursor, steps.PaginateNextURL, steps.PaginateLink}

// String is the kind's paginate.type.
func (k pagination) String() string {
	if k >= paginations {
		return fmt.Sprintf("pagination(%d)", uint8(k))
	}
	return string(types[k])
}

// paginationOf is the kind of a paginate.type (onePage for one Compile
// does not know: the validator refuses those).
func paginationOf(typ steps.PaginateType) pagination {
	for k := byNumber; k < paginations; k++ {
		if types[k] == typ {
			return k
		}
	}
	return onePage
}

// A paginator walks one kind of pagination. It is compiled once and
// shared by every sync of a spec: what a sync has followed is in its own
// followed set.
type paginator interface {
	// first is the page.* values of the first page.
	first() map[string]any
	// next is where the page after a page is: page is that page's page.*
	// values, pg its answer, records the number of its records.
	next(pg *engine.Page, page map[string]any, records int, seen followed) (following, error)
	// skip is the page.* values of the page after a page without fetching
	// it; false when the pages after it are reached only through it.
	skip(page map[string]any) (map[string]any, bool)
}

// following is where the page after a page is.
type following struct {
	page  map[string]any // its page.* values
	url   string         // its URL (next_url, link), else ""
	token string         // the cursor, link or URL that leads there
	none  bool           // there is no page after it
}

// compilePager compiles the pagination of src; next is its cursor: or next:
// locator as engine.Load compiled it (engine.Plan.SourceReaders).
func compilePager(src *steps.Source, next parse.Extractor) paginator {
	p := src.Paginate
	if p == nil {
		return onePager{}
	}
	format := parse.Format(src.Response.Format)
	loc := func(l *steps.Locator) locator {
		if l == nil {
			return locator{}
		}
		return locator{e: next, format: format}
	}
	switch paginationOf(steps.PaginateType(p.Type.Value)) {
	case byNumber:
		start := 1
		if p.Start != nil {
			start = *p.Start
		}
		return numberPager{start: start, size: p.Size}
	case byOffset:
		start := 0
		if p.Start != nil {
			start = *p.Start
		}
		return offsetPager{start: start, size: p.Size}
	case byCursor:
		return cursorPager{read: loc(p.Cursor)}
	case byNextURL:
		return nextURLPager{read: loc(p.Next)}
	case byLink:
		return linkPager{}
	}
	return onePager{}
}

// onePager is a source of one page.
type onePager struct{}

func (onePager) first() map[string]any { return map[string]any{} }
func (onePager) next(*engine.Page, map[string]any, int, followed) (following, error) {
	return following{none: true}, nil
}
func (onePager) skip(map[string]any) (map[string]any, bool) { return nil, false }

// numberPager numbers the pages from start (page.number), asking for size
// records (page.size, when given).
type numberPager struct{ start, size int }

func (p numberPager) first() map[string]any { return p.at(p.start) }

func (p numberPager) next(_ *engine.Page, page map[string]any, _ int, _ followed) (following, error) {
	return following{page: p.at(toInt(page["number"]) + 1)}, nil
}

func (p numberPager) skip(page map[string]any) (map[string]any, bool) {
	return p.at(toInt(page["number"]) + 1), true
}

func (p numberPager) at(n int) map[string]any {
	page := map[string]any{"number": n}
	if p.size > 0 {
		page["size"] = p.size
	}
	return page
}

// offsetPager counts the records from start (page.offset), size a page
// (page.limit); the next page is past the records a page held.
type offsetPager struct{ start, size int }

func (p offsetPager) first() map[string]any { return p.at(p.start) }

func (p offsetPager) next(_ *engine.Page, page map[string]any, records int, _ followed) (following, error) {
	return following{page: p.at(toInt(page["offset"]) + records)}, nil
}

// skip moves by the page size (a skipped page's records are not known);
// without one, the pages after it cannot be found.
func (p offsetPager) skip(page map[string]any) (map[string]any, bool) {
	if p.size <= 0 {
		return nil, false
	}
	return p.at(toInt(page["offset"]) + p.size), true
}

func (p offsetPager) at(offset int) map[string]any {
	return map[string]any{"offset": offset, "limit": p.size}
}

// cursorPager reads the next page's page.cursor from a page.
type cursorPager struct{ read locator }

func (cursorPager) first() map[string]any { return map[string]any{"cursor": ""} }

func (p cursorPager) next(pg *engine.Page, _ map[string]any, _ int, seen followed) (following, error) {
	tok, found, err := p.read.value(pg)
	tok, err = seen.follow(byCursor, "cursor", tok, pg, found, err)
	return following{page: map[string]any{"cursor": tok}, token: tok, none: tok == ""}, err
}

func (cursorPager) skip(map[string]any) (map[string]any, bool) { return nil, false }

// nextURLPager reads the next page's URL from a page.
type nextURLPager struct{ read locator }

func (nextURLPager) first() map[string]any { return map[string]any{} }

func (p nextURLPager) next(pg *engine.Page, _ map[string]any, _ int, seen followed) (following, error) {
	tok, found, err := p.read.value(pg)
	tok, err = seen.follow(byNextURL, "page URL", tok, pg, found, err)
	return following{page: map[string]any{}, url: tok, token: tok, none: tok == ""}, err
}

func (nextURLPager) skip(map[string]any) (map[string]any, bool) { return nil, false }

// linkPager follows the Link rel="next" header (RFC 8288) of a page.
type linkPager struct{}

func (linkPager) first() map[string]any { return map[string]any{} }

func (linkPager) next(pg *engine.Page, _ map[string]any, _ int, seen followed) (following, error) {
	l := nextLink(pg.Header)
	tok, err := seen.follow(byLink, `Link rel="next"`, l, pg, l != "", nil)
	return following{page: map[string]any{}, url: tok, token: tok, none: tok == ""}, err
}

func (linkPager) skip(map[string]any) (map[string]any, bool) { return nil, false }

// followed is what a sync has followed of the cursors and links (a hash
// of each): one that comes again would loop.
type followed map[uint64]bool

// follow checks the token read from a page (found: there is one; err: it
// could not be read) and notes it; "" is no page after it. what names
// the token in messages. A link (next_url, Link) is noted as the page it
// leads to — resolved against pg's URL, without its fragment (never
// sent) — so that spellings of one URL are one page.
func (f followed) follow(kind pagination, what, tok string, pg *engine.Page, found bool, err error) (string, error) {
	switch {
	case err != nil:
		return "", fmt.Errorf("reading the next %s: %w", kind, err)
	case !found:
		return "", nil
	}
	key := tok
	if kind == byNextURL || kind == byLink {
		key = linkKey(pg.URL, tok)
	}
	if f[hash64(key)] {
		return "", fmt.Errorf("the next %s %q was already followed: %w (stopped rather than loop)", what, tok, ErrLoop)
	}
	f[hash64(key)] = true
	return tok, nil
}

// linkKey is the page a link leads to: resolved against base (the URL
// of the page it was read from; relative links resolve as the engine
// resolves them against the source's URL, which shares its path), its
// fragment dropped. A link that does not parse is its own key.
func linkKey(base, link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return link
	}
	if b, err := url.Parse(base); err == nil && base != "" {
		u = b.ResolveReference(u)
	}
	u.Fragment, u.RawFragment = "", ""
	return u.String()
}

// locator reads one value of a page: a compiled json, xpath or header
// locator.
type locator struct {
	e      parse.Extractor
	format parse.Format
}

// value reads the value; found is false for a missing, null or empty one.
func (l locator) value(pg *engine.Page) (string, bool, error) {
	return extract(l.e, l.format, pg.Status, pg.Header, pg.Body)
}

// extract reads one value of a page with a locator; found is false for a
// missing, null or empty value.
func extract(e parse.Extractor, format parse.Format, status int, header http.Header, body []byte) (string, bool, error) {
	v, found, err := e.Extract(parse.NewDoc(parse.Response{Status: status, Header: header, Body: body}, format))
	if err != nil || !found || v == nil {
		return "", false, err
	}
	str := fmt.Sprint(v)
	return str, str != "", nil
}

// nextLink returns the target of the rel="next" link of Link headers
// (RFC 8288), or "".
func nextLink(h http.Header) string {
	for _, v := range h.Values("Link") {
		for v != "" {
			i := strings.IndexByte(v, '<')
			j := strings.IndexByte(v, '>')
			if i < 0 || j < i {
				break
			}
			target := v[i+1 : j]
			v = v[j+1:]
			// the link's parameters run to a comma outside quotes
			var params []string
			var cur strings.Builder
			quoted := false
			k := 0
			for ; k < len(v); k++ {
				c := v[k]
				if c == '"' {
					quoted = !quoted
				}
				if !quoted && (c == ';' || c == ',') {
					params = append(params, cur.String())
					cur.Reset()
					if c == ',' {
						break
					}
					continue
				}
				cur.WriteByte(c)
			}
			params = append(params, cur.String())
			if k < len(v) {
				v = v[k+1:]
			} else {
				v = ""
			}
			for _, param := range params {
				key, val, ok := strings.Cut(strings.TrimSpace(param), "=")
				if !ok || !strings.EqualFold(strings.TrimSpace(key), "rel") {
					continue
				}
				for _, rel := range strings.Fields(strings.Trim(strings.TrimSpace(val), `"`)) {
					if strings.EqualFold(rel, "next") {
						return target
					}
				}
			}
		}
	}
	return ""
}
