package childtest_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/plumbhq/plumb/internal/childtest"
)

func TestMain(m *testing.M) {
	childtest.Main(m, map[string]func(args []string) int{
		// serve says it is ready (with its arguments and $CHILDTEST_X),
		// then waits for SIGTERM and exits 7
		"serve": func(args []string) int {
			stop := make(chan os.Signal, 1)
			signal.Notify(stop, syscall.SIGTERM)
			fmt.Printf("ready %s %s\n", strings.Join(args, ","), os.Getenv("CHILDTEST_X"))
			<-stop
			fmt.Fprintln(os.Stderr, "bye")
			return 7
		},
		// lines prints its arguments one a line, the last without a
		// newline, and exits 0
		"lines": func(args []string) int {
			fmt.Print(strings.Join(args, "\n"))
			return 0
		},
		// upper echoes its standard input in upper case until EOF
		"upper": func([]string) int {
			sc := bufio.NewScanner(os.Stdin)
			for sc.Scan() {
				fmt.Println(strings.ToUpper(sc.Text()))
			}
			return 0
		},
	})
}

// TestEntryChild is the child of TestEntry.
func TestEntryChild(t *testing.T) {
	args := childtest.Entry(t, "entry")
	fmt.Println("entry", strings.Join(args, ","))
}

// recorder is a testing.TB whose Fatal and Fatalf record the message and
// end the goroutine (as testing's do), so a test can check that a
// childtest call fails.
type recorder struct {
	testing.TB
	mu  sync.Mutex
	msg string
}

func (r *recorder) Helper() {}
func (r *recorder) Fatal(args ...any) {
	r.Fatalf("%s", fmt.Sprint(args...))
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

// fails runs f with a recorder and returns the message it failed with ("" if
// it did not fail).
func fails(t *testing.T, f func(tb testing.TB)) string {
	t.Helper()
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.msg
}

func isReady(line string) bool { return strings.HasPrefix(line, "ready") }

// TestAwaitAndStop: the readiness line carries the arguments and the
// environment; a graceful stop returns the child's own exit status, and
// its stderr is recorded.
func TestAwaitAndStop(t *testing.T) {
	c := childtest.Start(t, childtest.Options{Role: "serve", Args: []string{"a", "b c"}, Env: []string{"CHILDTEST_X=x1"}})
	if line := c.Stdout.Await(t, time.Minute, "the ready line", isReady); line != "ready a,b c x1" {
		t.Errorf("ready line %q", line)
	}
	if code := c.ExitCode(); code != -1 {
		t.Errorf("ExitCode while running: %d", code)
	}
	err := c.Stop(t, syscall.SIGTERM, time.Minute)
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 7 || c.ExitCode() != 7 {
		t.Errorf("exit: %v, code %d; want 7", err, c.ExitCode())
	}
	select {
	case <-c.Exited():
	default:
		t.Error("Exited not closed after Stop")
	}
	if got := c.Stderr.String(); got != "bye\n" {
		t.Errorf("stderr %q", got)
	}
	if err := c.Signal(syscall.SIGTERM); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("Signal after the exit: %v", err)
	}
}

// TestKill9 kills a real process with SIGKILL; killing one that has
// already exited fails the test.
func TestKill9(t *testing.T) {
	c := childtest.Start(t, childtest.Options{Role: "serve"})
	c.Stdout.Await(t, time.Minute, "the ready line", isReady)
	c.Kill9(t)
	if c.ExitCode() != -1 {
		t.Errorf("exit code %d after kill -9", c.ExitCode())
	}
	if c.Stderr.String() != "" {
		t.Errorf("a killed child said goodbye: %q", c.Stderr.String())
	}
	msg := fails(t, func(tb testing.TB) { c.Kill9(tb) })
	if !strings.Contains(msg, "kill -9 serve") {
		t.Errorf("kill -9 after the exit: %q", msg)
	}

	// a child that ended by itself: Kill9 says so
	d := childtest.Start(t, childtest.Options{Role: "lines", Args: []string{"x"}})
	if err := d.Wait(t, time.Minute); err != nil {
		t.Fatal(err)
	}
	if msg := fails(t, func(tb testing.TB) { d.Kill9(tb) }); !strings.Contains(msg, "exit status 0") {
		t.Errorf("Kill9 of an exited child: %q", msg)
	}
}

// TestAwaitOrder: each line is offered once, in order; the last line
// without a newline is offered once the child has exited; Lines has them
// all.
func TestAwaitOrder(t *testing.T) {
	c := childtest.Start(t, childtest.Options{Role: "lines", Args: []string{"one", "two", "three", "four"}})
	var offered []string
	all := func(line string) bool { offered = append(offered, line); return true }
	for range 4 {
		c.Stdout.Await(t, time.Minute, "a line", all)
	}
	if got := strings.Join(offered, " "); got != "one two three four" {
		t.Errorf("offered %q", got)
	}
	if err := c.Wait(t, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.Stdout.Lines(), " "); got != "one two three four" {
		t.Errorf("Lines %q", got)
	}
}

// TestAwaitFails: Await fails when the child exits before the line, and
// when the line does not come in time; Wait fails when the child does not
// exit in time.
func TestAwaitFails(t *testing.T) {
	c := childtest.Start(t, childtest.Options{Role: "lines", Args: []string{"one", "two"}})
	msg := fails(t, func(tb testing.TB) {
		c.Stdout.Await(tb, time.Minute, "the line three", func(l string) bool { return l == "three" })
	})
	if !strings.Contains(msg, "lines exited (exit status 0) before the line three came on its stdout") {
		t.Errorf("exited before: %q", msg)
	}
	if got := strings.Join(c.Stdout.Lines(), " "); got != "one two" {
		t.Errorf("Lines %q", got)
	}

	s := childtest.Start(t, childtest.Options{Role: "serve"})
	msg = fails(t, func(tb testing.TB) {
		s.Stderr.Await(tb, 50*time.Millisecond, "a line that never comes", isReady)
	})
	if !strings.Contains(msg, "serve: a line that never comes did not come on its stderr within 50ms") {
		t.Errorf("timeout: %q", msg)
	}
	msg = fails(t, func(tb testing.TB) { s.Wait(tb, 50*time.Millisecond) })
	if !strings.Contains(msg, "serve did not exit within 50ms") {
		t.Errorf("Wait timeout: %q", msg)
	}
}

// TestCleanupKills: a child still running when its test ends is killed.
func TestCleanupKills(t *testing.T) {
	var c *childtest.Child
	t.Run("sub", func(t *testing.T) {
		c = childtest.Start(t, childtest.Options{Role: "serve"})
		c.Stdout.Await(t, time.Minute, "the ready line", isReady)
	})
	select {
	case <-c.Exited():
	default:
		t.Fatal("the child outlived its test")
	}
	if c.ExitCode() != -1 || c.Stderr.String() != "" {
		t.Errorf("the child was not killed: exit %d, stderr %q", c.ExitCode(), c.Stderr.String())
	}
}

// TestEntry: a test function as the child's entry point gets the
// arguments; in a normal run it skips.
func TestEntry(t *testing.T) {
	c := childtest.Start(t, childtest.Options{Role: "entry", Test: "TestEntryChild", Args: []string{"p", "q"}})
	if line := c.Stdout.Await(t, time.Minute, "the entry line", func(l string) bool { return strings.HasPrefix(l, "entry") }); line != "entry p,q" {
		t.Errorf("entry line %q", line)
	}
	if err := c.Wait(t, time.Minute); err != nil {
		t.Errorf("exit: %v\n%s", err, c.Stdout)
	}
	// another role: the entry point skips
	d := childtest.Start(t, childtest.Options{Role: "other", Test: "TestEntryChild"})
	if err := d.Wait(t, time.Minute); err != nil || strings.Contains(d.Stdout.String(), "entry") {
		t.Errorf("another role: %v\n%s", err, d.Stdout)
	}
}

// TestStdin: the child reads what the test writes to Stdin, and its
// output is there as it comes.
func TestStdin(t *testing.T) {
	c := childtest.Start(t, childtest.Options{Role: "upper", Stdin: true})
	for _, w := range []string{"a", "b"} {
		if _, err := fmt.Fprintln(c.Stdin, w); err != nil {
			t.Fatal(err)
		}
		want := strings.ToUpper(w)
		c.Stdout.Await(t, time.Minute, strconv.Quote(want), func(l string) bool { return l == want })
	}
	if err := c.Stdin.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Wait(t, time.Minute); err != nil {
		t.Fatal(err)
	}
}

// TestUnknownRole: a role TestMain does not have exits 2 and says so.
func TestUnknownRole(t *testing.T) {
	c := childtest.Start(t, childtest.Options{Role: "nosuch"})
	c.Wait(t, time.Minute)
	if c.ExitCode() != 2 || !strings.Contains(c.Stderr.String(), `no child role "nosuch"`) {
		t.Errorf("exit %d, stderr %q", c.ExitCode(), c.Stderr.String())
	}
}
