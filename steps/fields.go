package steps

// Clash is a dotted field name that names a field inside another one the
// same list names: Fields[Field] is "a.b" where Fields[Prefix] is "a". A
// lead field holds a value or fields, not both, so appends and CSV columns
// refuse it alike.
type Clash struct{ Field, Prefix int }

// FieldClashes returns the clashes of fields (dotted names), in order.
func FieldClashes(fields []string) []Clash {
	at := make(map[string]int, len(fields))
	for i, f := range fields {
		at[f] = i
	}
	var out []Clash
	for i, f := range fields {
		for j := range len(f) {
			if p, ok := at[f[:j]]; ok && f[j] == '.' {
				out = append(out, Clash{Field: i, Prefix: p})
				break
			}
		}
	}
	return out
}
