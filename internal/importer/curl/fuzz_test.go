package curl

import (
	"strings"
	"testing"

	"github.com/plumbhq/plumb/engine"
)

// FuzzCurl: any line either imports into a file plumb loads, or is
// refused with one error line; never a panic or a hang.
func FuzzCurl(f *testing.F) {
	for _, c := range lines {
		f.Add(c.line)
	}
	for _, s := range []string{
		`curl -d @- https://x.example`, `curl $'https://x.example/\x41' -H $'X-A: \t1'`, `curl -H 'A;' https://x.example`,
		`curl 'https://x.example/a b?c=%zz'`, `curl -X '' https://x.example`, "curl -d '{\"a\": {{b}}}' https://x.example",
		`curl https://x.example -d 'a=1&&b' -G`, `curl -u : https://x.example`, `curl https://[::1]:8080/x`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		in, err := Import(line, Options{})
		if err != nil {
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("a multi-line error: %q", err)
			}
			return
		}
		src := in.YAML()
		if _, err := engine.Parse("fuzz.yaml", src); err != nil {
			t.Fatalf("the line %q imports into a file plumb does not load: %v\n%s", line, err, src)
		}
	})
}
