package webhook

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// New reports every problem of a config, each a *FieldError naming its
// field, not only the first.
func TestNewReportsEveryProblem(t *testing.T) {
	_, err := New(Config{Preset: PresetHMAC, Secrets: []string{"s"}, Header: "bad header", Prefix: "\x01",
		Algorithm: "md5", Encoding: "b32", Signed: "{timestamp}.{id}.{body}"}, nil)
	if err == nil {
		t.Fatal("no error")
	}
	var fields []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *FieldError
		if !errors.As(err, &fe) {
			t.Errorf("%v is not a *FieldError", err)
			return
		}
		fields = append(fields, fe.Field)
	}
	walk(err)
	if got, want := strings.Join(fields, " "), "header prefix algorithm encoding signed signed"; got != want {
		t.Errorf("fields = %s, want %s\n%v", got, want, err)
	}
	_, err = New(Config{Preset: PresetHMAC, Secrets: []string{"s"}, Header: "X-Sig", Signed: "{nope}", Tolerance: time.Minute}, nil)
	if err == nil || !strings.Contains(err.Error(), `signed "{nope}"`) {
		t.Errorf("err = %v", err)
	}
	if strings.Contains(err.Error(), "signs no timestamp") {
		t.Errorf("a signed that did not compile is said to sign no timestamp:\n%v", err)
	}
}
