package engine

import (
	"reflect"
	"testing"
)

// The masker's shortcuts (a URL or a map with nothing to mask is returned
// as it is) must never let a secret through.
func TestMaskShortcutsKeepMasking(t *testing.T) {
	m := newMasker([]string{"s3cr3t-key", "p w"})
	urls := map[string]string{
		"http://h.example/a/b?x=1":                 "http://h.example/a/b?x=1",
		"http://h.example/s3cr3t-key/b":            "http://h.example/" + mask + "/b",
		"http://h.example/b?k=s3cr3t-key":          "http://h.example/b?k=" + mask,
		"http://h.example/b?k=%73%33cr3t-key":      "http://h.example/b?k=" + mask,
		"http://h.example/%73%33cr3t-key":          "http://h.example/" + mask,
		"http://h.example/b?k=p+w":                 "http://h.example/b?k=" + mask,
		"http://user:pass@h.example/b":             "http://user:" + mask + "@h.example/b",
		"http://h.example/b?note=xs3cr3t-keyx&y=1": "http://h.example/b?note=x" + mask + "x&y=1",
	}
	for in, want := range urls {
		if got := m.url(in); got != want {
			t.Errorf("url(%q) = %q, want %q", in, got, want)
		}
	}
	clean := map[string]any{"a": "x", "n": 1.0, "l": []any{"y", map[string]any{"z": true}}}
	if got := m.valueMap(clean); !reflect.DeepEqual(got, clean) {
		t.Errorf("valueMap changed a map with nothing to mask: %v", got)
	}
	dirty := map[string]any{"a": "x", "l": []any{"y", map[string]any{"z": "token s3cr3t-key"}}}
	got := m.valueMap(dirty)
	if want := (map[string]any{"a": "x", "l": []any{"y", map[string]any{"z": "token " + mask}}}); !reflect.DeepEqual(got, want) {
		t.Errorf("valueMap = %v, want %v", got, want)
	}
	if dirty["l"].([]any)[1].(map[string]any)["z"] != "token s3cr3t-key" {
		t.Error("valueMap changed its argument")
	}
}
