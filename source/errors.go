package source

import "errors"

// ErrWriteResults is the error (errors.Is) of Report.Err when a sync
// ended because its results could not be written: the emit function or
// Options.Flush failed. The pages before it are saved; the sync's position
// is not the cause, so skipping or restarting a page does not help.
var ErrWriteResults = errors.New("writing results")
