package steps

// Source pulls records from an API, page by page (plumb sync). Its request
// is described like a step's (request, auth, timeout, deadline, retry,
// response, capture, outcome) and may read two more roots: state (the
// saved sync state, e.g. state.cursor) and page (the pagination values of
// the page being fetched). Each record then runs through the
// integration's steps as the lead.
type Source struct {
	Step `yaml:",inline"`
	// Pos is where the source: section starts.
	Pos Pos `yaml:"-"`
}
