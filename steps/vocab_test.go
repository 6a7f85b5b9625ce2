package steps

import (
	"strings"
	"testing"
)

// TestEnumChecks shows what the validator asks of an enum: declared
// values (and extensions) only, empty only where the key may be left out.
func TestEnumChecks(t *testing.T) {
	if !RetryActions.Has(ActionStop) || RetryActions.Has("pray") || RetryActions.Valid("pray") {
		t.Error("RetryActions: Has/Valid")
	}
	if !OnErrors.Valid("") || OnErrors.Has("") {
		t.Error("empty is valid (the key left out) but not a value")
	}
	if !AuthTypes.Has("x-vault") || AuthTypes.Has("y-vault") {
		t.Error("AuthTypes: x-NAME is an extension, nothing else")
	}
	if got := TLSVersions.Hint(); got != "one of 1.2, 1.3" {
		t.Errorf("Hint = %q", got)
	}
	seen := map[string]bool{}
	for _, v := range Vocabulary() {
		if seen[v.Name] || v.Name == "" || len(v.Choices) == 0 {
			t.Errorf("vocabulary %q: empty or listed twice", v.Name)
		}
		seen[v.Name] = true
		for _, c := range v.Choices {
			if c.Value == "" || strings.TrimSpace(c.Doc) == "" {
				t.Errorf("%s: value %q has no doc", v.Name, c.Value)
			}
		}
		if v.Default != "" && !v.Has(v.Default) {
			t.Errorf("%s: default %q is not a value", v.Name, v.Default)
		}
	}
}

// TestEnumErrors shows a value outside the vocabulary is reported at its
// key with the declared values as the hint.
func TestEnumErrors(t *testing.T) {
	src := "version: 1\nname: x\nsteps:\n  - name: a\n    request: { url: \"https://x.test\" }\n    retry: [{ on: [500], action: pray }]\n    on_error: maybe\n"
	_, err := parse("e.yaml", []byte(src))
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{`unknown action "pray" (` + RetryActions.Hint() + `)`, `unknown on_error "maybe" (` + OnErrors.Hint() + `)`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("missing %q in:\n%v", want, err)
		}
	}
}
