// Package childtest is test support: it runs the test binary itself as a
// child process, so that a test can kill -9 a real process (or send it a
// gentler signal), restart it and check what survived. Only tests import
// it.
//
// A child has a role. Either TestMain runs it, before any test
// ([Main]; the child runs no test at all), or a test function is its entry
// point ([Options.Test] names it and [Entry] is its first line, for a child
// that needs a *testing.T). [Start] starts it with the role, its arguments
// and environment, records its stdout and stderr, and makes sure it does
// not outlive the test: at the end of the test a child still running is
// killed, and when the test failed the last lines of its output are
// logged. [Output.Await] waits for a line (a readiness line such as a
// listening address), woken by the child's writes: no sleeping, no
// polling. [Child.Kill9] kills with SIGKILL and checks that SIGKILL is what
// ended the child; [Child.Stop] sends a signal and waits for the exit.
//
// What a child runs and what the test checks stay in the test's package.
package childtest

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The environment variables that tell a child its role: roleEnv for a
// role TestMain runs ([Main]), testRoleEnv for one a test function runs
// ([Entry]).
const (
	roleEnv     = "PLUMB_CHILDTEST_ROLE"
	testRoleEnv = "PLUMB_CHILDTEST_TEST_ROLE"
)

// tailLines is how many of the last lines of each of a child's outputs
// are logged when its test fails.
const tailLines = 40

// killWait bounds the wait for a killed child to be gone (it turns a hang
// into a failure; a killed process is gone at once).
const killWait = 60 * time.Second

// Main is the body of TestMain in a package whose children TestMain runs:
// in a child started by [Start] with one of roles, it runs that role's
// function with the child's arguments ([Options.Args]) and exits with the
// code it returns, running no test; in any other process it runs the
// tests (m.Run) and exits.
func Main(m *testing.M, roles map[string]func(args []string) int) {
	if role := os.Getenv(roleEnv); role != "" {
		run, ok := roles[role]
		if !ok {
			fmt.Fprintf(os.Stderr, "childtest: this test binary has no child role %q\n", role)
			os.Exit(2)
		}
		os.Exit(run(childArgs()))
	}
	os.Exit(m.Run())
}

// Entry is the first line of a test function that is the entry point of
// children of role ([Options.Test]): in such a child it returns the
// child's arguments; in any other run it skips the test.
func Entry(t testing.TB, role string) []string {
	t.Helper()
	if os.Getenv(testRoleEnv) != role {
		t.Skipf("runs only as the child process (role %q) of another test", role)
	}
	return childArgs()
}

// childArgs returns the arguments after the first "--" of the command
// line, where Start puts a child's arguments.
func childArgs() []string {
	for i, a := range os.Args {
		if a == "--" {
			return os.Args[i+1:]
		}
	}
	return nil
}

// Options describe a child to start.
type Options struct {
	// Role is the child's role: a key of the roles given to [Main], or,
	// with Test, the role its entry point passes to [Entry]. Required.
	Role string
	// Test, when set, is the name of the test function that is the
	// child's entry point (it alone runs in the child); when empty,
	// TestMain runs the child ([Main]).
	Test string
	// Args are the child's arguments, returned to it by [Main] or
	// [Entry].
	Args []string
	// Env holds KEY=VALUE pairs added to the child's environment, which
	// is otherwise this process's.
	Env []string
	// Stdin, when set, gives the child a pipe as its standard input,
	// written through [Child.Stdin]; otherwise its standard input is
	// empty.
	Stdin bool
}

// Child is a running (or ended) child process.
type Child struct {
	// Stdout and Stderr record everything the child writes to them.
	Stdout, Stderr *Output
	// Stdin is the write end of the child's standard input when
	// [Options.Stdin] is set, else nil. It is closed once the child
	// has exited.
	Stdin io.WriteCloser

	role string
	cmd  *exec.Cmd
	done chan struct{} // closed once the child has exited and err is set
	err  error         // what cmd.Wait returned
}

// Start starts the test binary as a child with the role, arguments and
// environment of o, and fails the test if it cannot. A child still
// running when the test (and its subtests) end is killed then, and when
// the test failed, the last 40 lines of the child's stdout and
// stderr are logged.
func Start(t testing.TB, o Options) *Child {
	t.Helper()
	if o.Role == "" {
		t.Fatal("childtest: Start without a role")
	}
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	run, env := "^$", roleEnv
	if o.Test != "" {
		run, env = "^"+o.Test+"$", testRoleEnv
	}
	args := append([]string{"-test.run=" + run, "-test.count=1", "--"}, o.Args...)
	cmd := exec.Command(exe, args...)
	for _, kv := range os.Environ() {
		// a child's own children get only the roles Start gives them
		if !strings.HasPrefix(kv, roleEnv+"=") && !strings.HasPrefix(kv, testRoleEnv+"=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, env+"="+o.Role)
	cmd.Env = append(cmd.Env, o.Env...)
	// a grandchild holding an output pipe open cannot keep Wait from
	// returning once the child is gone
	cmd.WaitDelay = 10 * time.Second
	c := &Child{role: o.Role, cmd: cmd, done: make(chan struct{})}
	c.Stdout = newOutput(c, "stdout")
	c.Stderr = newOutput(c, "stderr")
	cmd.Stdout, cmd.Stderr = writer{c.Stdout}, writer{c.Stderr}
	if o.Stdin {
		if c.Stdin, err = cmd.StdinPipe(); err != nil {
			t.Fatalf("childtest: %s: %v", o.Role, err)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("childtest: starting %s: %v", o.Role, err)
	}
	go func() {
		c.err = cmd.Wait() // returns once the outputs are copied
		close(c.done)      // before the outputs close: Await then sees the exit
		c.Stdout.close()
		c.Stderr.close()
	}()
	t.Cleanup(func() {
		select {
		case <-c.done:
		default:
			_ = cmd.Process.Kill()
			<-c.done
		}
		if t.Failed() {
			for _, o := range []*Output{c.Stdout, c.Stderr} {
				if tail := o.tail(tailLines); tail != "" {
					t.Logf("child %s (%s), %s, last lines:\n%s", c.role, c.status(), o.name, tail)
				}
			}
		}
	})
	return c
}

// Signal sends sig to the child. It is safe to call from any goroutine
// (a test server's handler, say); after the exit it returns
// os.ErrProcessDone.
func (c *Child) Signal(sig os.Signal) error {
	return c.cmd.Process.Signal(sig)
}

// Kill9 kills the child with SIGKILL (kill -9) and waits for it to be
// gone. It fails the test if the child had already exited, or if
// anything but SIGKILL ended it.
func (c *Child) Kill9(t testing.TB) {
	t.Helper()
	if err := c.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("childtest: kill -9 %s: %v (%s)", c.role, err, c.status())
	}
	c.Wait(t, killWait)
	if sig, ok := c.signal(); !ok || sig != syscall.SIGKILL {
		t.Fatalf("childtest: %s: %s, want killed by SIGKILL", c.role, c.status())
	}
}

// Stop sends sig to the child (SIGTERM or os.Interrupt, for a graceful
// stop) and waits up to d for its exit, as [Child.Wait] does.
func (c *Child) Stop(t testing.TB, sig os.Signal, d time.Duration) error {
	t.Helper()
	if err := c.Signal(sig); err != nil {
		t.Fatalf("childtest: %s: sending %v: %v (%s)", c.role, sig, err, c.status())
	}
	return c.Wait(t, d)
}

// Wait waits for the child's exit and returns what exec.Cmd.Wait
// returned: nil for exit status 0, an *exec.ExitError for another status
// or a signal. It fails the test if the child is still running after d (d
// only turns a hang into a failure).
func (c *Child) Wait(t testing.TB, d time.Duration) error {
	t.Helper()
	select {
	case <-c.done:
		return c.err
	default:
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-c.done:
		return c.err
	case <-timer.C:
		t.Fatalf("childtest: %s did not exit within %s", c.role, d)
		return nil
	}
}

// Exited is closed once the child has exited and all of its output is
// recorded.
func (c *Child) Exited() <-chan struct{} { return c.done }

// ExitCode is the child's exit status once it has exited: -1 while it
// runs or when a signal ended it.
func (c *Child) ExitCode() int {
	select {
	case <-c.done:
		return c.cmd.ProcessState.ExitCode()
	default:
		return -1
	}
}

// signal returns the signal that ended the child, if one did.
func (c *Child) signal() (syscall.Signal, bool) {
	select {
	case <-c.done:
	default:
		return 0, false
	}
	ws, ok := c.cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() {
		return 0, false
	}
	return ws.Signal(), true
}

// status describes the child's state for messages: "running", "exit
// status 1", "signal: killed".
func (c *Child) status() string {
	select {
	case <-c.done:
		return c.cmd.ProcessState.String()
	default:
		return "running"
	}
}

// Output is what a child writes to its stdout or its stderr, recorded in
// full as it comes.
type Output struct {
	c    *Child
	name string

	mu     sync.Mutex
	buf    []byte
	closed bool          // the child has exited: buf is complete
	grew   chan struct{} // closed (and replaced) at each write and at the close
	next   int           // offset in buf of the first line Await has not offered
}

func newOutput(c *Child, name string) *Output {
	return &Output{c: c, name: name, grew: make(chan struct{})}
}

// writer is the exec.Cmd side of an Output.
type writer struct{ o *Output }

func (w writer) Write(p []byte) (int, error) {
	o := w.o
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf = append(o.buf, p...)
	close(o.grew)
	o.grew = make(chan struct{})
	return len(p), nil
}

func (o *Output) close() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closed = true
	close(o.grew)
	o.grew = make(chan struct{})
}

// String returns everything recorded so far (all of it once the child has
// exited).
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return string(o.buf)
}

// Lines returns the lines recorded so far, without their newlines; a last
// line without a newline is included.
func (o *Output) Lines() []string {
	s := strings.TrimSuffix(o.String(), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// Await offers match the child's lines in order, each once across calls
// to Await (a later call goes on after the line an earlier one returned),
// and returns the first line match accepts. It waits for lines as the
// child writes them, and fails the test if the child exits before a line
// matches, or if none has after d; what names the line for those
// messages. match runs on the calling goroutine, so it may fail the test
// itself.
func (o *Output) Await(t testing.TB, d time.Duration, what string, match func(line string) bool) string {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		line, ok, grew := o.nextLine()
		if ok {
			if match(line) {
				return line
			}
			continue
		}
		if grew == nil {
			t.Fatalf("childtest: %s exited (%s) before %s came on its %s", o.c.role, o.c.status(), what, o.name)
		}
		select {
		case <-grew:
		case <-timer.C:
			t.Fatalf("childtest: %s: %s did not come on its %s within %s", o.c.role, what, o.name, d)
		}
	}
}

// nextLine returns the next line not yet offered by Await, if there is
// one; else a channel closed at the next write, or nil once the output is
// complete.
func (o *Output) nextLine() (line string, ok bool, grew <-chan struct{}) {
	o.mu.Lock()
	defer o.mu.Unlock()
	rest := o.buf[o.next:]
	if i := bytes.IndexByte(rest, '\n'); i >= 0 {
		o.next += i + 1
		return string(rest[:i]), true, nil
	}
	if o.closed {
		if len(rest) > 0 {
			o.next = len(o.buf)
			return string(rest), true, nil
		}
		return "", false, nil
	}
	return "", false, o.grew
}

// tail returns the last n lines recorded, each cut to 1,000 bytes.
func (o *Output) tail(n int) string {
	lines := o.Lines()
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 1000 {
			lines[i] = l[:1000] + fmt.Sprintf("… (%d bytes)", len(l))
		}
	}
	return strings.Join(lines, "\n")
}
