package engine

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/jsonw"
)

// The reference encoding is encoding/json over plain copies of Result and
// StepResult: struct types built from their exported fields and tags, so
// without their MarshalJSON methods (a defined type like `type plain
// Result` would still marshal its Steps with StepResult.MarshalJSON). Being
// built from the real types, they follow every field added to them.
var (
	plainStepType   = plainStruct(reflect.TypeFor[StepResult](), nil)
	plainResultType = plainStruct(reflect.TypeFor[Result](), map[reflect.Type]reflect.Type{
		reflect.TypeFor[[]StepResult](): reflect.SliceOf(plainStepType),
	})
)

// plainStruct is t's exported fields, tags and all, with the field types in
// swap replaced.
func plainStruct(t reflect.Type, swap map[reflect.Type]reflect.Type) reflect.Type {
	var fields []reflect.StructField
	for f := range t.Fields() {
		if !f.IsExported() {
			continue
		}
		if to, ok := swap[f.Type]; ok {
			f.Type = to
		}
		fields = append(fields, f)
	}
	return reflect.StructOf(fields)
}

// toPlain copies the struct v into a new value of the plain type pt.
func toPlain(v reflect.Value, pt reflect.Type) reflect.Value {
	out := reflect.New(pt).Elem()
	for i := range pt.NumField() {
		src, dst := v.FieldByName(pt.Field(i).Name), out.Field(i)
		if src.Type() == dst.Type() {
			dst.Set(src)
			continue
		}
		if src.IsNil() { // []StepResult
			continue
		}
		dst.Set(reflect.MakeSlice(dst.Type(), src.Len(), src.Len()))
		for j := range src.Len() {
			dst.Index(j).Set(toPlain(src.Index(j), dst.Type().Elem()))
		}
	}
	return out
}

// plainResult is r as a plain value, for encoding/json; nil stays nil.
func plainResult(r *Result) any {
	if r == nil {
		return (*Result)(nil)
	}
	return toPlain(reflect.ValueOf(r).Elem(), plainResultType).Addr().Interface()
}

// checkResultJSON fails unless AppendJSON writes what encoding/json writes (jsonw.Marshal: HTML escaping off)
// for r's plain copy, and fails with the same error; and unless json.Marshal
// writes the same with and without the methods.
func checkResultJSON(t testing.TB, r *Result) {
	t.Helper()
	plain := plainResult(r)
	want, wantErr := jsonw.Marshal(plain)
	prefix := []byte("prefix")
	got, err := r.AppendJSON(prefix[:len(prefix):len(prefix)])
	switch {
	case wantErr != nil || err != nil:
		if wantErr == nil || err == nil || err.Error() != wantErr.Error() {
			t.Fatalf("AppendJSON error %v, encoding/json error %v", err, wantErr)
		}
		if string(got) != "prefix" {
			t.Fatalf("AppendJSON failed but returned %q, not the buffer it was given", got)
		}
		if _, err := json.Marshal(r); err == nil || !strings.Contains(err.Error(), wantErr.Error()) {
			t.Fatalf("json.Marshal error %v, want one holding %v", err, wantErr)
		}
		return
	case !bytes.Equal(got, append([]byte("prefix"), want...)):
		t.Fatalf("AppendJSON writes\n%s\nencoding/json writes\n%s", got, want)
	}
	// json.Marshal escapes HTML in what MarshalJSON returns, and compacts it
	wantHTML, err := json.Marshal(plain)
	if err != nil {
		t.Fatal(err)
	}
	if gotHTML, err := json.Marshal(r); err != nil || !bytes.Equal(gotHTML, wantHTML) {
		t.Fatalf("json.Marshal writes\n%s (%v)\nwithout MarshalJSON it wrote\n%s", gotHTML, err, wantHTML)
	}
	if r == nil {
		return
	}
	// a Result value (not a pointer) and a step alone marshal the same way
	if gotHTML, err := json.Marshal(*r); err != nil || !bytes.Equal(gotHTML, wantHTML) {
		t.Fatalf("json.Marshal(Result value) writes\n%s (%v)\nwant\n%s", gotHTML, err, wantHTML)
	}
	for i := range r.Steps {
		want, _ := jsonw.Marshal(toPlain(reflect.ValueOf(r.Steps[i]), plainStepType).Interface())
		if got, err := r.Steps[i].AppendJSON(nil); err != nil || !bytes.Equal(got, want) {
			t.Fatalf("StepResult.AppendJSON writes\n%s (%v)\nencoding/json writes\n%s", got, err, want)
		}
	}
}

// custom is a value of a type AppendJSON does not know: encoding/json
// writes it.
type custom struct {
	A string `json:"a"`
	B []int  `json:"b,omitempty"`
}

// marshalsTo returns its bytes from MarshalJSON, valid or not.
type marshalsTo string

func (m marshalsTo) MarshalJSON() ([]byte, error) { return []byte(m), nil }

// failsToMarshal fails in MarshalJSON.
type failsToMarshal struct{}

func (failsToMarshal) MarshalJSON() ([]byte, error) { return nil, errors.New("no way") }

func TestResultJSONMatchesEncodingJSON(t *testing.T) {
	ms := Duration(time.Millisecond)
	odd := "tab\there \"quoted\" back\\slash <b>&amp;</b> \x00\x01\x1f\x7f é ü 日本 \U0001F600 \u2028\u2029 bad\xff\xfe utf8 \xe2\x80 cut"
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	cases := map[string]*Result{
		"nil":         nil,
		"zero":        {},
		"empty steps": {Outcome: Skip, Steps: []StepResult{}, Lead: map[string]any{}},
		"nil maps in lead": {Outcome: Success, Lead: map[string]any{
			"nil map": map[string]any(nil), "nil slice": []any(nil), "empty slice": []any{}, "nil": nil}},
		"every field": {Outcome: Error, Reason: "step b: status 503", Step: "b", Duration: 1234567, Class: ClassStatus, Err: errors.New("hidden"),
			Steps: []StepResult{
				{Name: "a", Outcome: Success, Attempts: 1, Duration: ms, Captured: map[string]any{}, Tried: []string{}, Appended: map[string]any{}},
				{Name: "b", Outcome: Error, Reason: "status 503", Method: "POST", URL: "http://h/x?a=1&b=<2>", Status: 503, Attempts: 3,
					Duration: -1, Captured: map[string]any{"k": "v"}, Fallback: "cache", Tried: []string{"request: 503", "", odd}, Variant: 2,
					Timeout: Duration(time.Second), Rule: "retry (default rule)", Waited: 5 * ms, Cache: "miss", Batch: "b1",
					Appended: map[string]any{"x": 1.0}, Class: ClassStatus, Err: errors.New("hidden"), raw: map[string]any{"k": "secret"}},
			},
			Lead: map[string]any{"email": "a@b.example"}},
		"strings": {Outcome: Outcome(odd), Reason: odd, Step: odd, Class: Class(odd),
			Steps: []StepResult{{Name: odd, Outcome: Outcome(odd), Method: odd, URL: odd, Rule: odd, Cache: odd, Batch: odd, Fallback: odd}},
			Lead:  map[string]any{odd: odd, "": "", "\xff": 1.0, "\xfe": 2.0, "a\u2028": []any{odd}}},
		"floats": {Outcome: Success, Lead: map[string]any{
			"zero": 0.0, "negzero": math.Copysign(0, -1), "one": 1.0, "neg": -1.5, "third": 1.0 / 3,
			"tiny": 1e-7, "edge small": 1e-6, "below edge": 0.00000099999, "big": 1e20, "edge big": 1e21, "huge": 1.5e300,
			"max": math.MaxFloat64, "min": math.SmallestNonzeroFloat64, "negtiny": -1e-10, "e-100": 1e-100, "int": 12345678901234567890.0,
			"ints": []any{0, -1, 7, int64(math.MaxInt64), int64(math.MinInt64)}}},
		"numbers": {Outcome: Success, Lead: map[string]any{
			"a": json.Number("0"), "b": json.Number("-12.5e+10"), "c": json.Number("1E5"), "d": json.Number(""), "e": json.Number("123456789012345678901234567890")}},
		"nested": {Outcome: Success, Lead: map[string]any{"a": map[string]any{"b": []any{map[string]any{"c": []any{[]any{}, nil, true, false}}}}}},
		"fallback": {Outcome: Success, Lead: map[string]any{
			"custom": custom{A: "<x>"}, "ptr": &custom{B: []int{1}}, "dur": Duration(1500), "outcome": Success, "time": time.Unix(0, 0).UTC(),
			"strings": []string{"a", "<b>"}, "smap": map[string]string{"z": "1", "a": "2"}, "f32": float32(0.1), "uint": uint8(7),
			"marshaler": marshalsTo(`{ "spaced" : [1, 2] }`), "raw": json.RawMessage(`[ 1 ]`), "bytes": []byte("hi"),
			"intkeys": map[int]any{2: "b", 10: "a"}}},
		"many keys": {Outcome: Success, Lead: func() map[string]any {
			m := map[string]any{}
			for i := range 100 {
				m[fmt.Sprintf("k%d", i*7919%100)] = float64(i)
			}
			return m
		}()},
		"deep": {Outcome: Success, Lead: func() map[string]any {
			m := map[string]any{"end": 1.0}
			for range 1500 {
				m = map[string]any{"m": m, "a": []any{"x"}}
			}
			return m
		}()},
		// errors: encoding/json's own, for the first bad value in its order
		"nan":            {Outcome: Success, Lead: map[string]any{"x": math.NaN()}},
		"inf in step":    {Outcome: Success, Steps: []StepResult{{Name: "a", Captured: map[string]any{"x": []any{math.Inf(-1)}}}}},
		"first error":    {Outcome: Success, Lead: map[string]any{"b": math.Inf(1), "a": json.Number("nope")}},
		"bad number":     {Outcome: Success, Lead: map[string]any{"n": json.Number("1.")}},
		"unsupported":    {Outcome: Success, Lead: map[string]any{"ch": make(chan int)}},
		"bad marshaler":  {Outcome: Success, Lead: map[string]any{"m": marshalsTo(`{`)}},
		"failing method": {Outcome: Success, Steps: []StepResult{{Appended: map[string]any{"m": failsToMarshal{}}}}},
		"cycle":          {Outcome: Success, Lead: cyclic},
	}
	for name, r := range cases {
		t.Run(name, func(t *testing.T) { checkResultJSON(t, r) })
	}
}

// TestResultJSONEveryField sets every exported field of Result and
// StepResult, so a field added to them but not to AppendJSON shows.
func TestResultJSONEveryField(t *testing.T) {
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.String:
			v.SetString("x<" + v.Type().Name())
		case reflect.Int, reflect.Int64:
			v.SetInt(1500)
		case reflect.Bool:
			v.SetBool(true)
		case reflect.Float64:
			v.SetFloat(2.5)
		case reflect.Map:
			v.Set(reflect.ValueOf(map[string]any{"k": "v", "n": 1.0}))
		case reflect.Slice:
			v.Set(reflect.MakeSlice(v.Type(), 2, 2))
			for i := range 2 {
				fill(v.Index(i))
			}
		case reflect.Interface:
			v.Set(reflect.ValueOf(errors.New("not serialised")))
		case reflect.Struct:
			for i := range v.NumField() {
				if v.Type().Field(i).IsExported() {
					fill(v.Field(i))
				}
			}
		default:
			t.Fatalf("fill: add a case for %s", v.Type())
		}
	}
	var r Result
	fill(reflect.ValueOf(&r).Elem())
	checkResultJSON(t, &r)
	checkResultJSON(t, &Result{Steps: []StepResult{{}}})
}

// FuzzResultJSON builds results from fuzz input (strings, JSON documents,
// float bits, numbers) and compares AppendJSON with encoding/json.
func FuzzResultJSON(f *testing.F) {
	f.Add("reason", []byte(`{"a":[1,"x",null,{"b":true}]}`), math.Float64bits(1.5), "12e3", uint16(0))
	f.Add("<é>\u2028\x00\xff", []byte(`[1e400]`), math.Float64bits(math.NaN()), "-0.5E+10", uint16(0xffff))
	f.Add("", []byte(`"x"`), math.Float64bits(1e21), "1.", uint16(0x5555))
	f.Add("k", []byte(`{"":{"":[]}}`), math.Float64bits(math.Inf(-1)), "", uint16(0xaaaa))
	f.Fuzz(func(t *testing.T, s string, doc []byte, bits uint64, num string, flags uint16) {
		on := func(bit int) bool { return flags&(1<<bit) != 0 }
		var v any
		dec := json.NewDecoder(bytes.NewReader(doc))
		if on(0) {
			dec.UseNumber()
		}
		if dec.Decode(&v) != nil {
			v = string(doc)
		}
		value := func(bit int) any {
			if on(bit) {
				return math.Float64frombits(bits)
			}
			return v
		}
		r := &Result{Outcome: Outcome(s), Duration: Duration(bits)}
		if on(1) {
			r.Reason, r.Step, r.Class = s, string(doc), Class(num)
		}
		if on(2) {
			r.Lead = map[string]any{s: value(3), num: json.Number(num), string(doc): s, "n": int64(bits)}
		} else if on(3) {
			r.Lead = map[string]any{}
		}
		if on(4) {
			r.Steps = []StepResult{}
		}
		if on(5) {
			st := StepResult{Name: s, Outcome: Outcome(num), Status: int(int16(bits)), Attempts: int(flags), Duration: Duration(-int64(bits))}
			if on(6) {
				st.Captured = map[string]any{s: []any{value(7), v, s, nil}, num: map[string]any{s: v}}
				st.Tried = []string{s, num}
			}
			if on(8) {
				st.Appended = map[string]any{"x": value(9), "c": custom{A: s}}
				st.Timeout, st.Waited, st.Variant = Duration(bits>>1), Duration(flags), int(flags)
				st.Reason, st.Method, st.URL, st.Rule, st.Cache, st.Batch, st.Fallback = s, num, s, num, s, num, string(doc)
			}
			r.Steps = append(r.Steps, st, StepResult{Name: num})
		}
		if on(10) {
			r.Lead = map[string]any{"doc": v, "num": json.Number(num)}
		}
		checkResultJSON(t, r)
	})
}

// benchResult is a result of the side-by-side benchmark's three-step flow
// (bench/integration.yaml), as cmd/plumb's BenchmarkEncodeResult has it.
func benchResult() *Result {
	ms := Duration(300 * time.Microsecond)
	return &Result{Outcome: Success, Duration: 3 * ms,
		Steps: []StepResult{
			{Name: "check", Outcome: Success, Method: "POST", URL: "http://127.0.0.1:18080/blacklist/check", Status: 200, Attempts: 1, Duration: ms,
				Timeout: Duration(5 * time.Second), Captured: map[string]any{"blacklisted": false, "request_id": "req-7ddfb9846b5a", "risk": 31.0}},
			{Name: "soap", Outcome: Success, Method: "POST", URL: "http://127.0.0.1:18080/soap/leads", Status: 200, Attempts: 1, Duration: ms,
				Timeout: Duration(5 * time.Second), Captured: map[string]any{"score": 90.0, "status": "Success", "valid": true}},
			{Name: "accept", Outcome: Success, Method: "POST", URL: "http://127.0.0.1:18080/regex/submit", Status: 200, Attempts: 1, Duration: ms,
				Timeout: Duration(5 * time.Second), Captured: map[string]any{"lead_id": "17030", "price": 45.0},
				Appended: map[string]any{"partner_id": "17030", "price": 45.0}},
		},
		Lead: map[string]any{"age": "34", "email": "lead1@gmail.example", "ip_address": "203.0.113.1", "partner_id": "17030",
			"phone": "(512) 555-0001", "postal_code": "78701", "price": 45.0, "state": "TX"},
	}
}

// BenchmarkResultJSON encodes the three-step flow's result: by reflection
// as before AppendJSON (encoding/json over the plain copy, with a reused
// encoder as plumb run had, and with json.Marshal), with AppendJSON into a
// reused buffer, and with json.Marshal (now through MarshalJSON).
func BenchmarkResultJSON(b *testing.B) {
	r := benchResult()
	checkResultJSON(b, r)
	b.Run("reflection", func(b *testing.B) {
		plain := plainResult(r)
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		b.ReportAllocs()
		for b.Loop() {
			buf.Reset()
			if err := enc.Encode(plain); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflection/json.Marshal", func(b *testing.B) {
		plain := plainResult(r)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(plain); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("AppendJSON", func(b *testing.B) {
		var buf []byte
		b.ReportAllocs()
		for b.Loop() {
			var err error
			if buf, err = r.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("json.Marshal", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
