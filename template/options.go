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
