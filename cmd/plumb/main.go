// Command plumb runs declarative HTTP integrations against leads.
//
// Run `plumb help` for the commands; docs/cli.md documents them all.
package main

import (
	"os"

	"github.com/plumbhq/plumb/cmd/plumb/internal/cli"
)

func main() {
	os.Exit(cli.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr, os.LookupEnv))
}
