package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds a Chromium or Chrome binary: $PLUMB_CHROMIUM, else the
// usual names on PATH. internal/console/testdata/ci-deps.sh installs the
// Debian package chromium for CI.
func chromium() string {
	if p := os.Getenv("PLUMB_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// needBrowser skips a browser test when there is no browser, except in CI
// (CI or PLUMB_REQUIRE_BROWSER set), where it fails: CI must run it.
func needBrowser(t *testing.T) string {
	t.Helper()
	bin := chromium()
	if bin != "" {
		return bin
	}
	msg := "no chromium binary found (looked for $PLUMB_CHROMIUM, chromium, chromium-browser, google-chrome, headless-shell on PATH); " +
		"install it with internal/console/testdata/ci-deps.sh (apt-get install chromium) to run the browser test"
	if os.Getenv("PLUMB_REQUIRE_BROWSER") != "" || os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// TestBrowser drives the console in headless Chromium: load the page, pick
// the blacklist example, edit the lead, run the flow, read the outcome from
// the DOM, save the run as a test case, check an edited YAML shows its
// error at its line, then run plumb test's package on the saved file.
//
// With PLUMB_CONSOLE_SCREENSHOTS=DIR it saves the screenshots of
// docs/console.md there (go test -run TestBrowser ./internal/console
// with PLUMB_CONSOLE_SCREENSHOTS=$PWD/docs).
func TestBrowser(t *testing.T) {
	bin := needBrowser(t)
	start := time.Now()
	e := newEnv(t, []string{"blacklist", "regex-accept"}, nil)
	shots := os.Getenv("PLUMB_CONSOLE_SCREENSHOTS")

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.WindowSize(1320, 900))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelAlloc()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	ctx, cancelT := context.WithTimeout(ctx, 60*time.Second)
	defer cancelT()

	do := func(what string, actions ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, actions...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(id string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
		if err != nil {
			t.Fatalf("text of #%s: %v", id, err)
		}
		return s
	}
	eval := func(js string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Evaluate[string](js))
		if err != nil {
			t.Fatalf("evaluating %s: %v", js, err)
		}
		return s
	}
	poll := func(what, js string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](js, chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("waiting for %s (%s): %v", what, js, err)
		}
	}
	shot := func(name string) {
		t.Helper()
		if shots == "" {
			return
		}
		b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		if err := os.WriteFile(filepath.Join(shots, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Load the page on another integration, then pick the blacklist.
	do("load", chromedp.Navigate(e.srv.URL+"/console/?integration=regex-accept/integration.yaml"))
	poll("the first integration", `document.getElementById('yaml-file').textContent.includes('regex-accept')`)
	// SetValue fires input and change, as a user's pick does.
	do("pick", chromedp.SetValue(chromedp.ID("integration"), "blacklist/integration.yaml"))
	poll("the blacklist's lead", `document.getElementById('lead').value.includes('jane.doe@gmail.example') && document.getElementById('test-file').textContent === 'blacklist/integration.test.yaml'`)
	if got := eval(`document.querySelector('input[data-name=api_key]').placeholder`); !strings.Contains(got, "set, hidden") {
		t.Fatalf("api_key placeholder: %q", got)
	}
	shot("console-start.png")

	// Edit the lead and run.
	lead := `{
  "email": "spam.king@blocked.example",
  "phone": "512-555-0199",
  "ip_address": "198.51.100.23"
}`
	do("edit the lead", chromedp.SetValue(chromedp.ID("lead"), lead))
	do("run", chromedp.Click(chromedp.ID("run-flow")))
	poll("the outcome", `!document.getElementById('summary').hidden && document.getElementById('outcome').textContent !== ''`)
	if got := text("outcome"); got != "failure" {
		t.Fatalf("outcome: %q (status %q)", got, text("status"))
	}
	if got := text("reason"); !strings.Contains(got, "blocked.example is blacklisted") {
		t.Fatalf("reason: %q", got)
	}
	if n := eval(`String(document.querySelectorAll('#tries article.try').length)`); n != "1" {
		t.Fatalf("tries shown: %s", n)
	}
	body := eval(`document.querySelector('#tries .response-body').textContent`)
	if !strings.Contains(body, `"is_blacklisted": true`) {
		t.Fatalf("pretty response body: %q", body)
	}
	if got := eval(`document.querySelector('#tries .request .headers').textContent`); !strings.Contains(got, "X-Api-Key: ****") {
		t.Fatalf("request headers should show the key masked: %q", got)
	}
	if strings.Contains(eval(`document.documentElement.outerHTML`), "demo-key") {
		t.Fatal("the api_key reached the page")
	}
	for _, label := range []string{"DNS", "connect", "TLS", "first byte", "total"} {
		if !strings.Contains(eval(`document.querySelector('#tries .timings').textContent`), label) {
			t.Fatalf("timing %s not shown", label)
		}
	}
	shot("console-run.png")

	// Save it as a test case.
	do("name the case", chromedp.SetValue(chromedp.ID("case-name"), "blocked domain, saved in the browser"))
	do("save", chromedp.Click(chromedp.ID("save-case")))
	poll("the save", `document.getElementById('save-status').textContent.startsWith('Saved')`)
	if got := text("save-status"); !strings.Contains(got, "plumb test passes on it") {
		t.Fatalf("save status: %q", got)
	}
	shot("console-saved.png")

	// Markup in a lead, echoed in the request and the partner's answer,
	// stays text.
	do("a lead with markup", chromedp.SetValue(chromedp.ID("lead"), `{"email": "x<img src=x onerror=window.pwned=1>@blocked.example", "phone": "5125550199", "ip_address": "198.51.100.23"}`))
	eval(`document.getElementById('summary').hidden = true, ''`)
	do("run again", chromedp.Click(chromedp.ID("run-flow")))
	poll("the second outcome", `!document.getElementById('summary').hidden`)
	if got := eval(`document.querySelector('#tries .request .body').textContent`); !strings.Contains(got, "<img src=x") {
		t.Fatalf("the request body should show the markup as text: %q", got)
	}
	if got := eval(`String(document.querySelectorAll('img').length) + ' ' + String(window.pwned)`); got != "0 undefined" {
		t.Fatalf("markup from the lead became HTML: %s", got)
	}

	// The YAML tab: an error shows at its line; nothing is written.
	file := filepath.Join(e.dir, "blacklist", "integration.yaml")
	orig, _ := os.ReadFile(file)
	src := string(orig)
	line := 1 + strings.Count(src[:strings.Index(src, "timeout: 2s")], "\n")
	do("YAML tab", chromedp.Click(chromedp.ID("tab-yaml")))
	eval(`(() => { const y = document.getElementById('yaml'); y.value = y.value.replace('timeout: 2s', 'timeout: soon'); y.dispatchEvent(new Event('input')); return '' })()`)
	poll("the load error", `document.querySelectorAll('#yaml-errors li').length > 0`)
	if got := eval(`Array.from(document.querySelectorAll('#gutter .ln.bad')).map(e => e.textContent).join(',')`); got != strconv.Itoa(line) {
		t.Fatalf("error lines in the gutter: %q, want %d (%s)", got, line, eval(`document.getElementById('yaml-errors').textContent`))
	}
	if got := eval(`document.getElementById('yaml-errors').textContent`); !strings.Contains(got, "line "+strconv.Itoa(line)) || !strings.Contains(got, "soon") {
		t.Fatalf("error list: %q", got)
	}
	if !strings.Contains(text("yaml-state"), "unsaved") {
		t.Fatalf("yaml state: %q", text("yaml-state"))
	}
	eval(`(() => { const y = document.getElementById('yaml'); y.scrollTop = 0; return '' })()`)
	shot("console-yaml-error.png")
	if now, _ := os.ReadFile(file); string(now) != src {
		t.Fatal("editing the YAML wrote the file before Save")
	}

	// A draft whose capture path matches nothing: the run shows why.
	eval(`(() => { const y = document.getElementById('yaml'); y.value = y.value.replace('timeout: soon', 'timeout: 2s').replace('json: risk_score,', 'json: result.risk_score,'); y.dispatchEvent(new Event('input')); return '' })()`)
	eval(`(document.getElementById('run-flow').click(), '')`)
	poll("the capture note", `document.querySelectorAll('#capture-notes li').length > 0 && !document.getElementById('capture-notes').hidden`)
	if got := eval(`document.getElementById('capture-notes').textContent`); !strings.Contains(got, "check: `score`: path `result.risk_score` not found in the response (keys: ") {
		t.Fatalf("capture notes: %q", got)
	}
	t.Logf("browser part: %s", time.Since(start).Round(time.Millisecond))

	// plumb test passes on the saved file, the new case with the others.
	saved, _ := os.ReadFile(filepath.Join(e.dir, "blacklist", "integration.test.yaml"))
	if !strings.Contains(string(saved), "name: blocked domain, saved in the browser") {
		t.Fatalf("the case is not in the test file:\n%s", saved)
	}
	if n := passAll(t, filepath.Join(e.dir, "blacklist")); n != 7 {
		t.Fatalf("plumb test ran %d cases, want the 6 of the example and the saved one", n)
	}
	t.Logf("total: %s", time.Since(start).Round(time.Millisecond))
}
