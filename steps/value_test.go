package steps

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const valueDoc = `body:
  name: "{{lead.name}}"
  age: 42
  born: 1985-09-09
  tags: [a, "b", 3]
  none: null
  ref: &r { x: 1 }
  again: *r
`

func valueOf(t *testing.T, src string) Value {
	t.Helper()
	v, err := ParseValue("v.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestValueShape: a Value is walked without YAML: kinds, keys in order
// with their positions, items, text and scalars, aliases resolved.
func TestValueShape(t *testing.T) {
	doc := valueOf(t, valueDoc)
	body, ok := doc.Entries().Get("body")
	if !ok || body.Kind() != MappingValue || body.Pos.String() != "v.yaml:2:3" {
		t.Fatalf("body %+v %v", body, ok)
	}
	var keys []string
	for _, e := range body.Entries() {
		keys = append(keys, e.Key)
	}
	if strings.Join(keys, ",") != "name,age,born,tags,none,ref,again" {
		t.Errorf("keys %v", keys)
	}
	if e := body.Entries()[1]; e.Pos.String() != "v.yaml:3:3" || e.Value.Pos.String() != "v.yaml:3:8" {
		t.Errorf("age at %s, value at %s", e.Pos, e.Value.Pos)
	}
	get := func(k string) Value { v, _ := body.Entries().Get(k); return v }
	if s, ok := get("name").Text(); !ok || s.Value != "{{lead.name}}" || !s.IsSet() || s.Pos.String() != "v.yaml:2:9" {
		t.Errorf("name %+v %v", s, ok)
	}
	for _, k := range []string{"age", "born", "none", "tags"} {
		if _, ok := get(k).Text(); ok {
			t.Errorf("%s is text", k)
		}
	}
	var age any
	if err := get("age").Decode(&age); err != nil || age != 42 {
		t.Errorf("age %#v %v", age, err)
	}
	items := get("tags").Items()
	if get("tags").Kind() != ListValue || len(items) != 3 || items[2].Describe() != `"3"` || items[1].Pos.String() != "v.yaml:5:13" {
		t.Errorf("tags %+v", items)
	}
	if get("none").Kind() != ScalarValue || get("none").Describe() != "null" || body.Describe() != "a mapping" || get("tags").Describe() != "a list" {
		t.Errorf("describe: %s %s %s", get("none").Describe(), body.Describe(), get("tags").Describe())
	}
	if again := get("again"); again.Kind() != MappingValue || again.Pos != get("ref").Pos {
		t.Errorf("alias %+v, anchor at %s", again, get("ref").Pos)
	}
	if body.Items() != nil || get("tags").Entries() != nil {
		t.Error("a mapping has no items, a list no entries")
	}
	var zero Value
	if zero.IsSet() || zero.Kind() != NoValue || zero.Describe() != "nothing" || zero.Entries() != nil || zero.Items() != nil {
		t.Errorf("zero value %+v", zero)
	}
	if x, err := zero.Plain(); x != nil || err != nil {
		t.Errorf("zero plain %v %v", x, err)
	}
}

// TestValuePlain: plain values are JSON's shapes, timestamps stay text.
func TestValuePlain(t *testing.T) {
	body, _ := valueOf(t, valueDoc).Entries().Get("body")
	got, err := body.Plain()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"name": "{{lead.name}}", "age": 42.0, "born": "1985-09-09", "tags": []any{"a", "b", 3.0},
		"none": nil, "ref": map[string]any{"x": 1.0}, "again": map[string]any{"x": 1.0}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plain\n got %#v\nwant %#v", got, want)
	}
	if _, err := valueOf(t, "{1: x}").Plain(); err == nil || err.Error() != "mapping keys must be strings, got 1" {
		t.Errorf("non-string key: %v", err)
	}
}

// TestParseValue: syntax errors as the parser says them, the file's
// problems as an ErrorList, an empty document absent.
func TestParseValue(t *testing.T) {
	if _, err := ParseValue("v.yaml", []byte("a: [")); err == nil || errors.As(err, new(ErrorList)) || !strings.HasPrefix(err.Error(), "yaml: ") {
		t.Errorf("syntax: %v", err)
	}
	var list ErrorList
	v, err := ParseValue("v.yaml", []byte("a: !foo x"))
	if !errors.As(err, &list) || list.Error() != `v.yaml:1:4: unknown YAML tag "!foo" (plumb reads plain YAML: remove the tag)` || v.Kind() != MappingValue {
		t.Errorf("unknown tag: %+v %v", v, err)
	}
	v, err = ParseValue("v.yaml", []byte("a: &a [*a]"))
	if !errors.As(err, &list) || !strings.Contains(list.Error(), "refers to a node containing it") || v.IsSet() {
		t.Errorf("self alias: %+v %v", v, err)
	}
	for _, src := range []string{"", "# nothing\n"} {
		if v, err := ParseValue("v.yaml", []byte(src)); err != nil || v.IsSet() {
			t.Errorf("%q: %+v %v", src, v, err)
		}
	}
	if v := valueOf(t, "null"); !v.IsSet() || v.Describe() != "null" {
		t.Errorf("null document %+v", v)
	}
}

type testItem struct {
	Name String   `yaml:"name,required"`
	Data recorder `yaml:"data"`
	Pos  Pos      `yaml:"-"`
}

// recorder decodes itself through the ValueDecoder hook.
type recorder struct {
	what string
	at   Pos
}

func (r *recorder) DecodeValue(v Value, what string) ErrorList {
	r.what, r.at = what, v.Pos
	var errs ErrorList
	if v.Kind() != ListValue {
		errs.Add(v.Pos, "", "%s must be a list, got %s", what, v.Describe())
	}
	return errs
}

// TestDecodeStrict: a Value decodes into another package's types as
// integration files are decoded, the ValueDecoder hook included.
func TestDecodeStrict(t *testing.T) {
	var it testItem
	errs := valueOf(t, "name: x\ndata: [1]\n").DecodeStrict(&it, "item")
	if len(errs) != 0 || it.Name.Value != "x" || it.Data.what != "item.data" || it.Data.at.String() != "v.yaml:2:7" || it.Pos.String() != "v.yaml:1:1" {
		t.Errorf("%+v %v", it, errs)
	}
	errs = valueOf(t, "nme: x\ndata: 1\n").DecodeStrict(&it, "item")
	want := "v.yaml:1:1: unknown key \"nme\" in item (did you mean \"name\"?)\n" +
		"v.yaml:1:1: item: missing required key \"name\"\n" +
		"v.yaml:2:7: item.data must be a list, got \"1\""
	if errs.Error() != want {
		t.Errorf("errors\n got %s\nwant %s", errs, want)
	}
}
