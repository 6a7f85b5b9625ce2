package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/plumbhq/plumb/store"
)

// TestMain registers the programs the scripts run as real processes:
//
//	plumb ARGS...              the CLI itself
//	exits CODE plumb ARGS...   runs plumb and succeeds only if it exits with CODE
//	                           (testscript's `!` only tells zero from non-zero)
//
// With $PLUMB_TEST_TEE set to a file, both also copy their stdout and
// stderr into that file as they write, so a script can wait for a line of a
// background command (waitfor) while it still runs.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"plumb": func() {
			stdout, stderr := teed()
			os.Exit(plumb(os.Args[1:], os.Stdin, stdout, stderr, os.LookupEnv))
		},
		"exits": func() {
			if len(os.Args) < 3 || os.Args[2] != "plumb" {
				fmt.Fprintln(os.Stderr, "usage: exits CODE plumb ARGS...")
				os.Exit(100)
			}
			want, err := strconv.Atoi(os.Args[1])
			if err != nil {
				fmt.Fprintln(os.Stderr, "exits: bad code:", err)
				os.Exit(100)
			}
			stdout, stderr := teed()
			got := plumb(os.Args[3:], os.Stdin, stdout, stderr, os.LookupEnv)
			if got != want {
				fmt.Fprintf(os.Stderr, "exits: plumb exited %d, want %d\n", got, want)
				os.Exit(1)
			}
			os.Exit(0)
		},
	})
}

// teed returns stdout and stderr, each also copied into $PLUMB_TEST_TEE
// when it is set.
func teed() (stdout, stderr io.Writer) {
	name := os.Getenv("PLUMB_TEST_TEE")
	if name == "" {
		return os.Stdout, os.Stderr
	}
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "PLUMB_TEST_TEE:", err)
		os.Exit(100)
	}
	return io.MultiWriter(os.Stdout, f), io.MultiWriter(os.Stderr, f)
}

// TestScripts runs testdata/script/*.txtar. $PROJECT is the repository root
// and $EXAMPLES its examples directory, so scripts run the real examples
// with the same commands the README shows.
func TestScripts(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	testscript.Run(t, testscript.Params{
		Dir: filepath.Join("testdata", "script"),
		Setup: func(env *testscript.Env) error {
			env.Setenv("PROJECT", root)
			env.Setenv("EXAMPLES", filepath.Join(root, "examples"))
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			// xmlwf FILE: FILE parses as XML
			"xmlwf": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: xmlwf FILE")
				}
				err := wellFormedXML(ts.ReadFile(args[0]))
				if neg && err == nil {
					ts.Fatalf("%s parses as XML", args[0])
				}
				if !neg && err != nil {
					ts.Fatalf("%s: %v", args[0], err)
				}
			},
			// jsonwf FILE: FILE parses as JSON
			"jsonwf": func(ts *testscript.TestScript, neg bool, args []string) {
				if len(args) != 1 {
					ts.Fatalf("usage: jsonwf FILE")
				}
				ok := json.Valid([]byte(ts.ReadFile(args[0])))
				if ok == neg {
					ts.Fatalf("%s: JSON valid = %v", args[0], ok)
				}
			},
			// holdcache FILE: open the bbolt cache FILE in this (the test's)
			// process and hold its lock until the script ends, as a
			// concurrent plumb run would
			"holdcache": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: holdcache FILE")
				}
				db, err := store.OpenBolt(ts.MkAbs(args[0]), time.Second)
				ts.Check(err)
				ts.Defer(func() { db.Close() })
			},
			// waitfor FILE REGEXP [VAR]: wait until FILE (the
			// $PLUMB_TEST_TEE of a background command) has a line matching
			// REGEXP and set VAR to its first group; fail after 30s. It is
			// how a script waits for a readiness line instead of sleeping.
			"waitfor": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) < 2 || len(args) > 3 {
					ts.Fatalf("usage: waitfor FILE REGEXP [VAR]")
				}
				re, err := regexp.Compile("(?m)" + args[1])
				ts.Check(err)
				deadline := time.Now().Add(30 * time.Second)
				for {
					b, _ := os.ReadFile(ts.MkAbs(args[0]))
					if m := re.FindSubmatch(b); m != nil {
						if len(args) == 3 {
							if len(m) < 2 {
								ts.Fatalf("waitfor: %s has no group for %s", args[1], args[2])
							}
							ts.Setenv(args[2], string(m[1]))
						}
						return
					}
					if time.Now().After(deadline) {
						ts.Fatalf("waitfor: no line matching %s in %s after 30s; it has:\n%s", args[1], args[0], b)
					}
					time.Sleep(5 * time.Millisecond)
				}
			},
		},
	})
}

// wellFormedXML reports whether src is one well-formed XML document.
func wellFormedXML(src string) error {
	dec := xml.NewDecoder(strings.NewReader(src))
	elements := 0
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if _, ok := tok.(xml.StartElement); ok {
			elements++
		}
	}
	if elements == 0 {
		return errors.New("no XML elements")
	}
	return nil
}
