// Package template compiles the template strings of plumb integrations
// ("{{settings.base_url}}/v2/leads/{{lead.state}}", "{{ lead.phone | digits }}",
// XML bodies, header values) once, and renders them per lead.
//
// It is public because the user named it, and because an embedder's own
// functions join the templates through it (engine.WithFuncs).
//
// Templates are Go text/template with sprig's functions and a few plumb
// helpers. Everything is decided at Compile time: the function map is built
// once per Set and shared by every template compiled in it (a Set keeps its
// templates for as long as it lives; one compiled per call, not per file,
// takes Transient), data references are rewritten into lookups, and an escaper
// is appended to every output action for the Mode the template was compiled
// with. Rendering parses nothing; a template made only of text and plain
// references ({{settings.base_url}}/v2/{{lead.state}}) does not even go
// through text/template's executor.
//
// # Data
//
// Render and Value take a map whose keys are the roots lead, settings, vars,
// steps, captured, response and batch. A root is read as
//
//	{{lead.email}}   {{ .lead.email }}   {{ $.lead.email }}
//
// (.lead.email means the root only where dot is the root, i.e. outside
// range/with bodies; $.lead.email always does). Reading an unknown root
// (.foo) is a compile error.
//
// A reference to a missing field fails the render with
// "template NAME: lead.phone is missing" (errors.Is(err, ErrMissing)).
// A missing field is nil instead when the reference is in the condition of
// if/with, or in a pipeline that uses default, coalesce, empty, hasKey,
// ternary, required, and, or, not:
//
//	{{ lead.phone | default "n/a" }}   {{ coalesce lead.a lead.b "x" }}
//	{{ if lead.vip }}VIP{{ end }}
//
// Error messages name paths, never data values.
//
// # Functions
//
// All of sprig's text functions except env, expandenv, getHostByName, the
// key/certificate generators (genPrivateKey, derivePassword, genCA*,
// genSelfSigned*, genSigned*, buildCustomCert) and the functions that modify a
// map argument in place (set, unset, merge, mergeOverwrite and their must
// forms). now and ago use the Set's clock (WithClock); ternary uses template
// truthiness, so a missing condition is false. plumb adds:
//
//	digits VALUE            only the digits 0-9 of VALUE: "(555) 123-4567" → "5551234567"
//	dateFormat LAYOUT VALUE VALUE (time.Time or date string) formatted with LAYOUT:
//	                        human tokens YYYY YY MM DD HH mm ss ("MM/DD/YYYY") or a Go
//	                        layout ("01/02/2006"). Strings are read as RFC3339,
//	                        2006-01-02, 2006-01-02T15:04:05, 2006-01-02 15:04:05,
//	                        01/02/2006, 1/2/2006 or 2006/01/02. nil or "" gives "".
//	age VALUE               whole years from the birth date VALUE to the clock's now
//	hmacSHA256 KEY MSG      HMAC-SHA256 of MSG with KEY, lowercase hex
//	hmacSHA256b64 KEY MSG   HMAC-SHA256 of MSG with KEY, standard base64
//	json VALUE              compact JSON encoding of VALUE (no HTML escaping)
//	required MSG VALUE      VALUE, or a render error MSG when it is nil or ""
//
// Functions that allocate in proportion to an argument, often lead data,
// are bounded: until, untilStep, seq and chunk make at most MaxItems
// elements; repeat, indent, nindent, randBytes and the rand* strings return
// at most MaxFuncOutput bytes; a render writes at most MaxOutput bytes.
// Beyond a bound the render fails with an error naming it.
//
// The work of one render is bounded too (a budget; see MaxSteps, MaxWork
// and WithBudget): every {{range}} iteration and every value a function
// takes or returns is a step, and the values passed to and returned by
// functions count their size, deeply for functions that walk their
// arguments (printf, toString, join, deepEqual, ...). A render past its
// budget fails with an error matching ErrBudget ("template f.yaml:3:9:
// render budget exceeded (more than 1000000 steps ...)"), so loops that
// lead data drives (range until (int lead.n), nested) cannot run for long.
// RenderContext and ValueContext also stop at the next step once their
// context is done. deepCopy returns its argument: templates never modify
// values.
//
// Function names starting with "__" are internal and cannot be called.
// {{define}}, {{block}} and {{template}} are not supported.
//
// # Output
//
// Every action's value is first turned into text: nil is "", floats are
// written without exponent (1e6 → "1000000"), time.Time as RFC3339, maps and
// slices as compact JSON, anything else with fmt.Sprint. The text is then
// escaped for its Mode (see Plain, JSON, XML, URL, Header) based on the
// literal text before the action, so a lead value can never change the shape
// of a request. Actions that only declare variables write nothing.
// if/with branches must end in the same context, and a range body must end in
// the context it starts in; otherwise Compile fails.
//
// Value returns the typed, unescaped value of a template that is exactly one
// action, which is how structured JSON bodies keep booleans and numbers.
package template
