//go:build !race

package template_test

// raceEnabled: the race detector makes text/template execution some ten
// times slower, too slow for a million-step render.
const raceEnabled = false
