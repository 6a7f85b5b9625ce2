package cli

import (
	"context"

	"github.com/plumbhq/plumb/cmd/plumb/internal/schema"
)

const schemaDoc = `
Print the JSON Schema (draft 2020-12) of integration files, generated from
plumb's own types, so editors complete and check keys. With --tests, print
the schema of NAME.test.yaml files instead.

The same schemas are committed in the repository's schema/ directory and
published at their $id; point yaml-language-server at one with a first line
such as
  # yaml-language-server: $schema=https://raw.githubusercontent.com/plumbhq/plumb/main/schema/plumb.schema.json
or save this output (plumb schema > plumb.schema.json) and use its path.`

func schemaCmd(_ context.Context, s *stdio, args []string) int {
	fs := newFlagSet(s, "schema", "[--tests]", schemaDoc)
	tests := fs.Bool("tests", false, "print the schema of test files (NAME.test.yaml)")
	pos, err := parseArgs(s, fs, args)
	if err != nil {
		return exitForParse(err)
	}
	if len(pos) > 0 {
		s.errorf("schema: unexpected argument %q", pos[0])
		return ExitUsage
	}
	kind := schema.Integration
	if *tests {
		kind = schema.TestFile
	}
	b, err := schema.Generate(kind)
	if err != nil {
		s.errorf("schema: %v", err)
		return ExitUsage
	}
	if _, err := s.stdout.Write(b); err != nil {
		s.errorf("schema: %v", err)
		return ExitUsage
	}
	return ExitOK
}
