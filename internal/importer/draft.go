// Package importer turns what partners already publish — an OpenAPI
// document, a curl line, a Postman collection, a HAR file — into a draft
// plumb integration with its test cases. The format packages below it
// (openapi, curl, postman, har) read their input into an [Integration];
// this package holds that draft, the request model the recorded formats
// share ([Recorded], [FromRecorded]) and the emitter that writes the draft
// as YAML with a stable key order and comments telling the author what to
// check (`# TODO(import): …`). The CLI's `plumb import` calls them.
package importer

import (
	"fmt"
	"strings"
)

// Error is an input the importer cannot use: one line, with a hint saying
// what to do about it.
type Error struct {
	Msg, Hint string
	// Detail lines follow the message (the operations to choose from).
	Detail []string
}

func (e *Error) Error() string {
	if e.Hint == "" {
		return e.Msg
	}
	return e.Msg + " (" + e.Hint + ")"
}

// Errorf returns an *Error with a hint.
func Errorf(hint, format string, args ...any) error {
	return &Error{Msg: fmt.Sprintf(format, args...), Hint: hint}
}

// Integration is a draft integration file.
type Integration struct {
	Name        string
	Description string
	// Header lines are the comment at the top of the file: where it came
	// from and what the author must check.
	Header   []string
	Settings []*Setting
	Auth     *Map
	// AuthHead lines are written above auth: (or alone when Auth is nil).
	AuthHead []string
	HTTP     *Map
	Steps    []*Map
	// Tests are the test cases, written inline under tests:.
	Tests []*Map
	// TestsHead lines are written above tests:.
	TestsHead []string
}

// Setting declares one setting of the draft.
type Setting struct {
	Name        string
	Description string
	Required    bool
	Secret      bool
	Default     any
	Env         string
	// Comment is written after the declaration.
	Comment string
	// Test is the value test cases give the setting (a placeholder for
	// secrets); nil when they need none (it has a default, or is base_url).
	Test any
}

// Setting returns the setting called name, or nil.
func (in *Integration) Setting(name string) *Setting {
	for _, s := range in.Settings {
		if s.Name == name {
			return s
		}
	}
	return nil
}

// AddSetting declares s under a name no other setting has (s.Name, else
// s.Name_2 …), sets its environment variable when it is a secret, and
// returns it.
func (in *Integration) AddSetting(s *Setting) *Setting {
	s.Name = Unique(Ident(s.Name), func(n string) bool { return in.Setting(n) != nil })
	if s.Secret && s.Env == "" {
		s.Env = EnvName(in.Name) + "_" + strings.ToUpper(s.Name)
	}
	if s.Secret && s.Test == nil {
		s.Test = "test-" + strings.ReplaceAll(s.Name, "_", "-")
	}
	in.Settings = append(in.Settings, s)
	return s
}

// SecretSetting declares a required secret setting named after name and
// returns the template that reads it.
func (in *Integration) SecretSetting(name, description string) string {
	s := in.AddSetting(&Setting{Name: Snake(name), Description: description, Required: true, Secret: true})
	return "{{settings." + s.Name + "}}"
}

// TestSettings is the settings mapping test cases give: every setting
// with a Test value.
func (in *Integration) TestSettings() *Map {
	m := &Map{Flow: true}
	for _, s := range in.Settings {
		if s.Test != nil {
			m.Set(s.Name, s.Test)
		}
	}
	return m
}

// TestValue is the value test cases give setting name ("" when none).
func (in *Integration) TestValue(name string) string {
	if s := in.Setting(name); s != nil {
		if s.Test != nil {
			return fmt.Sprint(s.Test)
		}
		if s.Default != nil {
			return fmt.Sprint(s.Default)
		}
	}
	return ""
}

// YAML writes the draft as an integration file.
func (in *Integration) YAML() []byte {
	top := &Map{}
	first := top.Set("version", 1)
	first.Head = in.Header
	top.Set("name", in.Name)
	if in.Description != "" {
		top.Set("description", oneLine(in.Description))
	}
	if len(in.Settings) > 0 {
		top.Set("settings", in.settingsMap())
	}
	if in.Auth != nil {
		top.Set("auth", in.Auth).Head = in.AuthHead
	}
	if in.HTTP != nil {
		top.Set("http", in.HTTP)
	}
	steps := &List{}
	for _, s := range in.Steps {
		steps.Add(s)
	}
	e := top.Set("steps", steps)
	if in.Auth == nil {
		e.Head = in.AuthHead // no auth: the comment says why
	}
	if in.NeedsLogin() {
		// plumb test cannot log in: its cases could only fail at bind
		first.Head = append(append([]string(nil), in.Header...),
			"No test cases: plumb test cannot log in (authorization_code). Log in with plumb auth login FILE,",
			"then try the step with plumb try FILE.")
	} else if len(in.Tests) > 0 {
		tests := &List{}
		for _, t := range in.Tests {
			tests.Add(t).Head = []string{""}
		}
		tests.Items[0].Head = nil
		top.Set("tests", tests).Head = append([]string{""}, in.TestsHead...)
	}
	return Marshal(top)
}

// NeedsLogin reports whether the auth is an OAuth2 authorization_code
// grant, which needs plumb auth login before anything runs.
func (in *Integration) NeedsLogin() bool {
	if in.Auth == nil {
		return false
	}
	g := in.Auth.Get("grant")
	return g != nil && g.Value == "authorization_code"
}

func (in *Integration) settingsMap() *Map {
	m := &Map{}
	for _, s := range in.Settings {
		d := &Map{Flow: true}
		if s.Required {
			d.Set("required", true)
		}
		if s.Secret {
			d.Set("secret", true)
		}
		if s.Default != nil {
			d.Set("default", s.Default)
		}
		if s.Env != "" {
			d.Set("env", s.Env)
		}
		if s.Description != "" {
			d.Set("description", oneLine(s.Description))
		}
		m.Set(s.Name, d).Comment = s.Comment
	}
	return m
}

// oneLine folds text onto one line and shortens it to 200 characters.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:199]) + "…"
	}
	return s
}
