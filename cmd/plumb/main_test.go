package main

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/plumbhq/plumb/cmd/plumb/internal/cli"
	"github.com/plumbhq/plumb/store"
)

// TestMain registers the programs the scripts run as real processes:
//
//	plumb ARGS...              the CLI itself
//	exits CODE plumb ARGS...   runs plumb and succeeds only if it exits with CODE
//	                           (testscript's `!` only tells zero from non-zero)
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"plumb": func() {
			os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv))
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
			got := cli.Main(os.Args[3:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv)
			if got != want {
				fmt.Fprintf(os.Stderr, "exits: plumb exited %d, want %d\n", got, want)
				os.Exit(1)
			}
			os.Exit(0)
		},
	})
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
			// sleep DURATION: wait, e.g. for a background command to start
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
			"sleep": func(ts *testscript.TestScript, neg bool, args []string) {
				if neg || len(args) != 1 {
					ts.Fatalf("usage: sleep DURATION")
				}
				d, err := time.ParseDuration(args[0])
				ts.Check(err)
				time.Sleep(d)
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
