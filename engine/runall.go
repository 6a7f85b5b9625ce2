package engine

import (
	"context"
	"iter"
	"sync"
)

// DefaultReorderBytes bounds, by default, the results RunAll holds back to
// give them in input order while an earlier lead is still running.
const DefaultReorderBytes = 64 << 20

// RunAllOptions tune RunAll.
type RunAllOptions struct {
	// Concurrency is how many leads run at once (default 1). It is raised
	// to the plan's largest batch size, so batches can fill.
	Concurrency int
	// Unordered gives results as they complete instead of in input order.
	Unordered bool
	// ReorderBytes bounds the (estimated) size of the finished results
	// held back while an earlier lead is still running (default
	// DefaultReorderBytes). When it is reached, no new lead starts until
	// the oldest one finishes. One slow lead therefore does not stall the
	// others until that much has piled up behind it.
	ReorderBytes int64
}

// RunAll runs every lead of leads with up to Concurrency in flight and
// yields (index, result) for each, in input order unless Unordered. Leads
// are read only as workers free up, so memory is bounded by Concurrency
// and ReorderBytes, not by the input. A lead paired with a non-nil error
// (a malformed input row) is not run: it gets an error result of class
// input, in its place.
//
// Results are yielded from the calling goroutine. When the consumer stops
// early, or ctx is done, no new lead is read; the leads already running
// end quickly (ctx is passed to them) and, unless the consumer stopped,
// are still yielded. When the input ends, batches being collected are sent
// as soon as every running lead waits in one, so no lead waits out a
// batch's wait for leads that are not coming.
func (r *Runner) RunAll(ctx context.Context, leads iter.Seq2[map[string]any, error], opt RunAllOptions) iter.Seq2[int, *Result] {
	return func(yield func(int, *Result) bool) {
		n := max(opt.Concurrency, r.plan.BatchSize(), 1)
		budget := opt.ReorderBytes
		if budget <= 0 {
			budget = DefaultReorderBytes
		}
		type job struct {
			i    int
			lead map[string]any
		}
		type done struct {
			i    int
			res  *Result
			size int64
		}
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		work := make(chan job)
		results := make(chan done, n)
		var (
			mu     sync.Mutex
			cond   = sync.NewCond(&mu)
			held   int64 // bytes of finished results not yet yielded
			head   int   // index of the next result to yield
			quit   bool
			handed int // leads given a result slot (run or input errors)
		)
		// take claims the next slot, unless the run is over.
		take := func() bool {
			mu.Lock()
			defer mu.Unlock()
			if quit || wctx.Err() != nil {
				return false
			}
			handed++
			return true
		}
		var workers sync.WaitGroup
		for range n {
			workers.Add(1)
			go func() {
				defer workers.Done()
				for j := range work {
					res := r.Run(wctx, j.lead)
					results <- done{i: j.i, res: res, size: resultSize(res)}
				}
			}()
		}
		// the feeder reads leads as workers free up
		go func() {
			defer func() {
				close(work)
				workers.Wait()
				r.run.undrain() // every lead of this RunAll has finished
				close(results)
			}()
			defer r.flush()
			i := 0
			for lead, err := range leads {
				mu.Lock()
				for !quit && !opt.Unordered && held >= budget && head < i {
					cond.Wait()
				}
				stop := quit
				mu.Unlock()
				if stop || wctx.Err() != nil {
					return
				}
				if !take() {
					return
				}
				if err != nil {
					res := &Result{Outcome: Error, Reason: err.Error(), Class: ClassInput, Err: err, Steps: []StepResult{}}
					results <- done{i: i, res: res, size: resultSize(res)}
					i++
					continue
				}
				// announced before the hand-off, so a lead between here
				// and Run still joins the last batch
				r.expect(1)
				work <- job{i: i, lead: lead} // workers take every job until work closes
				i++
			}
		}()
		stopped := false
		// next receives a result; after ctx is done it waits only for the
		// leads already handed out, not for the input (which may be
		// blocked reading a terminal).
		received := 0
		next := func() (done, bool) {
			for {
				select {
				case d, ok := <-results:
					if ok {
						received++
					}
					return d, ok
				case <-ctx.Done():
					mu.Lock()
					quit = true
					cond.Broadcast()
					all := received >= handed
					mu.Unlock()
					if all {
						return done{}, false
					}
					d, ok := <-results
					if ok {
						received++
					}
					return d, ok
				}
			}
		}
		finish := func() {
			mu.Lock()
			quit = true
			cond.Broadcast()
			mu.Unlock()
			cancel()
			go func() {
				for range results { // let the workers end
				}
			}()
		}
		if opt.Unordered {
			for d, ok := next(); ok; d, ok = next() {
				if !yield(d.i, d.res) {
					stopped = true
					break
				}
			}
			if stopped {
				finish()
			}
			return
		}
		pending := map[int]done{}
		for d, ok := next(); ok; d, ok = next() {
			mu.Lock()
			held += d.size
			mu.Unlock()
			pending[d.i] = d
			for {
				next, ok := pending[head]
				if !ok {
					break
				}
				delete(pending, head)
				if !stopped && !yield(next.i, next.res) {
					stopped = true
				}
				mu.Lock()
				head++
				held -= next.size
				cond.Broadcast()
				mu.Unlock()
			}
			if stopped {
				finish()
				return
			}
		}
	}
}

// Leads turns a slice into the sequence RunAll reads.
func Leads(leads []map[string]any) iter.Seq2[map[string]any, error] {
	return func(yield func(map[string]any, error) bool) {
		for _, l := range leads {
			if !yield(l, nil) {
				return
			}
		}
	}
}

// resultSize estimates the memory a result holds, for the reorder bound.
func resultSize(res *Result) int64 {
	n := int64(256 + len(res.Reason))
	n += valueSize(res.Lead)
	for i := range res.Steps {
		sr := &res.Steps[i]
		n += 256 + int64(len(sr.Reason)+len(sr.URL))
		n += valueSize(sr.Captured) + valueSize(sr.Appended)
		for _, t := range sr.Tried {
			n += int64(len(t))
		}
	}
	return n
}

func valueSize(v any) int64 {
	switch t := v.(type) {
	case map[string]any:
		n := int64(48)
		for k, x := range t {
			n += int64(len(k)) + 32 + valueSize(x)
		}
		return n
	case []any:
		n := int64(24)
		for _, x := range t {
			n += 16 + valueSize(x)
		}
		return n
	case string:
		return int64(len(t)) + 16
	}
	return 16
}
