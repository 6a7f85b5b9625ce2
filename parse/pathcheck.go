package parse

import "fmt"

// CheckJSONPath reports a gjson path that can never select anything: a
// query, #(…) or #[…], whose parenthesis or bracket is never closed (gjson
// ends the path there and finds nothing). It is conservative: a path that
// could match some document is never refused — a component such as
// "reason[" or "@nope" names a key (gjson reads "@name" as a key when no
// modifier has that name, as JSON-LD's "@type" is), and paths with
// subselectors, modifiers or static values, and the part after #. or a
// #(…)# (which makes a list, empty at worst), are not looked into.
func CheckJSONPath(path string) error {
	start := true // at the start of a component
	for i := 0; i < len(path); i++ {
		c := path[i]
		if start {
			switch c {
			case '[', '{', '@', '!':
				return nil // subselector, modifier or static value
			case '#':
				if i+1 < len(path) && (path[i+1] == '(' || path[i+1] == '[') {
					end, ok := queryEnd(path[i:])
					if !ok {
						return fmt.Errorf("json path %q: the query %s is never closed (a query is #(path==value), or #(path==value)# for every match; a key that starts with # is written \\#)", path, path[i:])
					}
					i += end
					if i+1 < len(path) && path[i+1] == '#' {
						return nil // every match: the rest makes a list, [] at worst
					}
					start = false
					continue
				}
				if i+1 < len(path) && path[i+1] == '.' {
					return nil // every element: the rest makes a list, [] at worst
				}
			}
		}
		start = false
		switch c {
		case '\\':
			i++
		case '.', '|':
			start = true
		}
	}
	return nil
}

// queryEnd returns the index of the bracket closing the query q (#( or
// #[ …), scanned as gjson's parseQuery does: nested brackets counted, a
// backslash escaping the next byte, quoted strings skipped.
func queryEnd(q string) (int, bool) {
	depth := 1
	for i := 2; i < len(q); i++ {
		switch q[i] {
		case '\\':
			i++
		case '[', '(':
			depth++
		case ']', ')':
			depth--
			if depth == 0 {
				return i, true
			}
		case '"':
			for i++; i < len(q); i++ {
				if q[i] == '\\' {
					i++
				} else if q[i] == '"' {
					break
				}
			}
		}
	}
	return 0, false
}
