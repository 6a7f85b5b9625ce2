package template

// WithFuncs adds functions to the Set, next to the built-in ones; a
// built-in name keeps its built-in function. Templates that call a function nobody
// defines still fail at compile time. Each value must be a function
// text/template accepts (one result, or a result and an error).
func WithFuncs(funcs map[string]any) Option {
	return func(s *Set) {
		if len(funcs) == 0 {
			return
		}
		if s.extra == nil {
			s.extra = make(map[string]any, len(funcs))
		}
		for k, v := range funcs {
			s.extra[k] = v
		}
	}
}

// Document says a JSON template's output is one JSON document (a request
// body): Compile refuses the template, at the syntax error, when no data
// could make it valid JSON — when it is invalid with every action replaced
// by a value valid where it lands ("" between tokens, nothing inside a
// string), every {{if}}/{{with}} taken both ways and every {{range}} run
// zero times and once. A template with many such renderings, or with a
// {{break}} or {{continue}}, is left to whoever checks the rendered output.
func Document() CompileOption {
	return func(c *compileConfig) { c.document = true }
}
