// Package parse extracts values ("captures") from HTTP responses.
//
// It is public because the user named it (the top-level packages of plumb
// are engine, template, parse, auth and steps) and because an extractor is
// useful on its own: JSON paths, XPath, split and regex over an answer,
// compiled once, bounded in depth.
//
// A capture is declared in an integration file, decoded into a [Spec] by the steps
// package and compiled once with [Compile] when the file loads. The resulting
// [Extractor] is immutable and safe for concurrent use; it runs once per response
// against a [Doc], which parses the body lazily and at most once however many
// extractors read it.
//
// Extractor kinds (exactly one per Spec):
//
//   - json: a gjson path (https://github.com/tidwall/gjson/blob/master/SYNTAX.md),
//     including queries and modifiers such as data.items.#.id or friends.#(age>40).name.
//     Strings, numbers (float64), booleans, null (nil, found) and objects/arrays
//     (map[string]any / []any) are returned as decoded values. The body must be
//     valid JSON whatever its Content-Type.
//   - xpath: an XPath 1.0 expression, compiled with the step's [Namespaces]. A node-set
//     yields the string-value of its first node (inner text of an element, value of an
//     attribute); number, string and boolean results are returned as they are. A NaN
//     number (for example number(//Missing)) counts as not found. Every prefix in
//     the expression must be declared in Namespaces (an undeclared one is a Compile
//     error), and prefixed names match by namespace URI, so the partner's own
//     prefixes do not matter. Unprefixed names match elements by local name when the
//     element has no prefix, including elements in a default namespace (xmlns="..."):
//     lenient antchfx/xpath behaviour, where strict XPath 1.0 needs a prefix mapping
//     (which also works: d:Status with d declared as the default namespace's URI).
//   - split: the body split by a delimiter; Index picks a part, negative counting from
//     the end.
//   - regex: an RE2 pattern searched in the body; Group picks a numbered or named group.
//   - header: the first value of a response header.
//   - status: the HTTP status code as an int (not found when the status is 0).
//
// With All, json, xpath, regex, split and header return every match as []any
// (found is false when nothing matched; a json path that yields an empty array is found).
// Text results of xpath, split, regex and header are trimmed of surrounding
// whitespace unless Trim is false; JSON strings are returned exactly as written.
// Finally Type, when set, coerces the value with [Coerce] (each element with All).
//
// A JSON or XML body nested deeper than [DefaultMaxDepth] levels (or [MaxDepth])
// is refused by an iterative scan before any parser sees it, with an error
// naming the limit: the parsers' memory and stack grow with nesting.
//
// Errors distinguish "not found" (found=false, err=nil: the author may default it)
// from "cannot read this response" (err != nil: body is not JSON/XML, coercion failed).
package parse
