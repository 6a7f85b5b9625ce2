package testcase

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"

	"github.com/plumbhq/plumb/engine"
)

// maxShown caps how much of a value a failure line shows.
const maxShown = 200

// compare checks a case's expectations against the engine's result and the
// requests the server received.
func compare(c *Case, r *engine.Result, reqs []Request) []Failure {
	var fs []Failure
	x := &c.Expect
	want := func(path, w, g string) { fs = append(fs, Failure{Path: path, Want: w, Got: g}) }
	if x.Outcome != "" && string(r.Outcome) != x.Outcome {
		g := string(r.Outcome)
		if r.Reason != "" {
			g += " (" + clip(r.Reason) + ")"
		}
		want("outcome", x.Outcome, g)
	}
	if x.Step != "" && r.Step != x.Step {
		want("step", x.Step, orNone(r.Step))
	}
	if x.Reason != "" && !strings.Contains(r.Reason, x.Reason) {
		want("reason", "text containing "+strconv.Quote(x.Reason), quoteOrNone(r.Reason))
	}
	if x.reasonRE != nil && !x.reasonRE.MatchString(r.Reason) {
		want("reason", "a match of /"+x.ReasonMatches+"/", quoteOrNone(r.Reason))
	}
	byStep := map[string]*engine.StepResult{}
	for i := range r.Steps {
		byStep[r.Steps[i].Name] = &r.Steps[i]
	}
	for _, e := range x.Steps {
		sr := byStep[e.Key]
		switch {
		case sr == nil:
			want("steps."+e.Key, e.Value, "not run")
		case string(sr.Outcome) != e.Value:
			g := string(sr.Outcome)
			if sr.Reason != "" {
				g += " (" + clip(sr.Reason) + ")"
			}
			want("steps."+e.Key, e.Value, g)
		}
	}
	for _, e := range x.Captured {
		var captured map[string]any
		if sr := byStep[e.Key]; sr != nil {
			captured = normalize(sr.Captured).(map[string]any)
		}
		for _, ce := range e.Value {
			path := "captured." + e.Key + "." + ce.Key
			got, ok := captured[ce.Key]
			if !ok {
				want(path, show(ce.Value.V), "nothing (step "+e.Key+" "+stepState(byStep[e.Key])+")")
				continue
			}
			fs = append(fs, match(path, ce.Value.V, got)...)
		}
	}
	if x.Lead.Set {
		got := normalize(r.Lead)
		if lf := match("lead", x.Lead.V, got); len(lf) > 0 {
			fs = append(fs, lf...)
			fs = append(fs, Failure{Path: "lead", Message: "diff (- want, + got)", Diff: diff(x.Lead.V, project(x.Lead.V, got))})
		}
	}
	grouped := requestsByKey(reqs)
	for _, e := range x.Requests {
		got := grouped[e.Key]
		path := "requests." + e.Key
		if len(got) != len(e.Value) {
			want(path, plural(len(e.Value), "request"), plural(len(got), "request")+describeRequests(got))
		}
		for i, m := range e.Value {
			if m == nil || i >= len(got) {
				continue
			}
			fs = append(fs, matchRequest(fmt.Sprintf("%s[%d]", path, i), m, got[i])...)
		}
	}
	for _, e := range x.Attempts {
		sr := byStep[e.Key]
		n := 0
		if sr != nil {
			n = sr.Attempts
		}
		if n != e.Value {
			want("attempts."+e.Key, strconv.Itoa(e.Value), strconv.Itoa(n))
		}
	}
	return fs
}

func stepState(sr *engine.StepResult) string {
	if sr == nil {
		return "did not run"
	}
	s := string(sr.Outcome)
	if sr.Reason != "" {
		s += ": " + clip(sr.Reason)
	}
	return s
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

func describeRequests(reqs []Request) string {
	if len(reqs) == 0 {
		return ""
	}
	parts := make([]string, len(reqs))
	for i, r := range reqs {
		parts[i] = r.Method + " " + r.URL
	}
	return " (" + clip(strings.Join(parts, ", ")) + ")"
}

func matchRequest(path string, m *RequestMatch, r Request) []Failure {
	var fs []Failure
	want := func(p, w, g string) { fs = append(fs, Failure{Path: path + "." + p, Want: w, Got: g}) }
	if m.Method.Value != "" && !strings.EqualFold(m.Method.Value, r.Method) {
		want("method", strings.ToUpper(m.Method.Value), r.Method)
	}
	u, err := url.Parse(r.URL)
	if err != nil {
		u = &url.URL{}
	}
	if m.URL != "" && m.URL != r.URL {
		want("url", m.URL, r.URL)
	}
	if m.urlRE != nil && !m.urlRE.MatchString(r.URL) {
		want("url", "a match of /"+m.URLMatches+"/", r.URL)
	}
	if m.Path.Value != "" && m.Path.Value != u.Path {
		want("path", m.Path.Value, u.Path)
	}
	q := u.Query()
	for _, e := range m.Query {
		if vs, ok := q[e.Key]; !ok {
			want("query."+e.Key, strconv.Quote(e.Value), "nothing")
		} else if vs[0] != e.Value {
			want("query."+e.Key, strconv.Quote(e.Value), strconv.Quote(vs[0]))
		}
	}
	for _, e := range m.Headers {
		vs, ok := r.Header[http.CanonicalHeaderKey(e.Key)]
		switch {
		case !ok:
			want("headers."+e.Key, strconv.Quote(e.Value), "nothing")
		case vs[0] != e.Value:
			want("headers."+e.Key, strconv.Quote(e.Value), strconv.Quote(vs[0]))
		}
	}
	if m.Body.Set {
		var got any
		if err := json.Unmarshal([]byte(r.Body), &got); err != nil {
			want("body", "JSON "+show(m.Body.V), "a body that is not JSON: "+quoteOrNone(r.Body))
		} else if bf := match(path+".body", m.Body.V, got); len(bf) > 0 {
			fs = append(fs, bf...)
			fs = append(fs, Failure{Path: path + ".body", Message: "diff (- want, + got)", Diff: diff(m.Body.V, project(m.Body.V, got))})
		}
	}
	if len(m.Form) > 0 {
		form, err := url.ParseQuery(r.Body)
		if err != nil {
			want("form", "a urlencoded body", quoteOrNone(r.Body))
		} else {
			for _, e := range m.Form {
				if vs, ok := form[e.Key]; !ok {
					want("form."+e.Key, strconv.Quote(e.Value), "nothing")
				} else if vs[0] != e.Value {
					want("form."+e.Key, strconv.Quote(e.Value), strconv.Quote(vs[0]))
				}
			}
		}
	}
	if m.BodyContains != "" && !strings.Contains(r.Body, m.BodyContains) {
		want("body_contains", "a body containing "+strconv.Quote(m.BodyContains), quoteOrNone(r.Body))
	}
	return fs
}

// match checks that got contains want: objects by a subset of keys (a
// dotted key reads a nested field when no key has that exact name),
// lists element by element with the same length, scalars by equality.
func match(path string, want, got any) []Failure {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []Failure{{Path: path, Want: "an object", Got: show(got)}}
		}
		var fs []Failure
		for _, k := range keysOf(w) {
			gv, ok := lookup(g, k)
			if !ok {
				fs = append(fs, Failure{Path: path + "." + k, Want: show(w[k]), Got: "nothing"})
				continue
			}
			fs = append(fs, match(path+"."+k, w[k], gv)...)
		}
		return fs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []Failure{{Path: path, Want: show(want), Got: show(got)}}
		}
		var fs []Failure
		for i := range w {
			fs = append(fs, match(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return fs
	}
	if !reflect.DeepEqual(want, got) {
		return []Failure{{Path: path, Want: show(want), Got: show(got)}}
	}
	return nil
}

// lookup reads key from m, or the nested field a dotted key names.
func lookup(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	if !strings.Contains(key, ".") {
		return nil, false
	}
	var cur any = m
	for _, part := range strings.Split(key, ".") {
		cm, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = cm[part]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// project keeps of got what want talks about, so a diff of a subset match
// shows only the fields that matter.
func project(want, got any) any {
	w, wok := want.(map[string]any)
	g, gok := got.(map[string]any)
	if wok && gok {
		out := map[string]any{}
		for k, wv := range w {
			if gv, ok := lookup(g, k); ok {
				out[k] = project(wv, gv)
			}
		}
		return out
	}
	wl, wok := want.([]any)
	gl, gok := got.([]any)
	if wok && gok && len(wl) == len(gl) {
		out := make([]any, len(gl))
		for i := range gl {
			out[i] = project(wl[i], gl[i])
		}
		return out
	}
	return got
}

// normalize turns a value into what encoding/json would decode it to.
func normalize(v any) any {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	var out any
	if json.Unmarshal(b, &out) != nil {
		return fmt.Sprint(v)
	}
	if out == nil {
		if _, isMap := v.(map[string]any); isMap {
			return map[string]any{}
		}
	}
	return out
}

// show renders a value as compact JSON, clipped.
func show(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return clip(fmt.Sprint(v))
	}
	return clip(string(b))
}

func clip(s string) string {
	if len(s) > maxShown {
		return s[:maxShown] + "…"
	}
	return s
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func quoteOrNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return strconv.Quote(clip(s))
}

// diff renders a line diff of want and got as indented JSON, with "-"
// before lines only in want and "+" before lines only in got, and at most
// contextLines unchanged lines around each change.
func diff(want, got any) string {
	a := prettyLines(want)
	b := prettyLines(got)
	ops := lineDiff(a, b)
	const contextLines = 2
	keep := make([]bool, len(ops))
	for i, op := range ops {
		if op.kind != ' ' {
			for j := max(0, i-contextLines); j <= min(len(ops)-1, i+contextLines); j++ {
				keep[j] = true
			}
		}
	}
	var sb strings.Builder
	sb.WriteString("--- want\n+++ got\n")
	skipped := false
	for i, op := range ops {
		if !keep[i] {
			skipped = true
			continue
		}
		if skipped {
			sb.WriteString("@@ … @@\n")
			skipped = false
		}
		sb.WriteByte(op.kind)
		sb.WriteString(op.line)
		sb.WriteByte('\n')
	}
	return strings.TrimSuffix(sb.String(), "\n")
}

func prettyLines(v any) []string {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return []string{fmt.Sprint(v)}
	}
	return strings.Split(string(b), "\n")
}

type diffOp struct {
	kind byte // ' ', '-', '+'
	line string
}

// lineDiff is a longest-common-subsequence diff; the inputs are small
// (pretty JSON of one body or lead).
func lineDiff(a, b []string) []diffOp {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var ops []diffOp
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			ops = append(ops, diffOp{' ', a[i]})
			i++
			j++
		case lcs[i+1][j] >= lcs[i][j+1]:
			ops = append(ops, diffOp{'-', a[i]})
			i++
		default:
			ops = append(ops, diffOp{'+', b[j]})
			j++
		}
	}
	for ; i < n; i++ {
		ops = append(ops, diffOp{'-', a[i]})
	}
	for ; j < m; j++ {
		ops = append(ops, diffOp{'+', b[j]})
	}
	return ops
}
