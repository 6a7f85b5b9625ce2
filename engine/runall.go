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
		if r.plan == nil {
			i := 0
			for lead := range leads {
				if !yield(i, notBoundResult(lead)) {
					return
				}
				i++
			}
			return
		}
		a := newRunAll(ctx, r, opt)
		defer a.cancel()
		go a.feed(leads)
		if opt.Unordered {
			a.yieldUnordered(yield)
		} else {
			a.yieldOrdered(yield)
		}
	}
}

// runAll is one RunAll: a feeder reads leads and hands them to workers,
// which send results; the caller's goroutine yields them (reordered unless
// Unordered). mu guards the fields below it, which the feeder and the
// consumer share.
type runAll struct {
	r       *Runner
	opt     RunAllOptions
	budget  int64           // bound of held
	ctx     context.Context // the caller's
	wctx    context.Context // the leads', cancelled when RunAll ends
	cancel  context.CancelFunc
	work    chan runJob
	results chan runDone
	workers sync.WaitGroup
	// received counts the results read; only the consumer touches it.
	received int

	mu     sync.Mutex
	cond   *sync.Cond
	held   int64 // bytes of finished results not yet yielded
	head   int   // index of the next result to yield
	quit   bool
	handed int // leads given a result slot (run or input errors)
}

// runJob is a lead handed to a worker, with its input index.
type runJob struct {
	i    int
	lead map[string]any
}

// runDone is a lead's result, with its input index and, once it is held
// back for reordering, its estimated size (the consumer estimates it only
// then: a result yielded as it arrives is never held).
type runDone struct {
	i    int
	res  *Result
	size int64
}

// newRunAll sets up a RunAll and starts its workers.
func newRunAll(ctx context.Context, r *Runner, opt RunAllOptions) *runAll {
	n := max(opt.Concurrency, r.plan.BatchSize(), 1)
	a := &runAll{r: r, opt: opt, budget: opt.ReorderBytes, ctx: ctx,
		work: make(chan runJob), results: make(chan runDone, n)}
	if a.budget <= 0 {
		a.budget = DefaultReorderBytes
	}
	a.wctx, a.cancel = context.WithCancel(ctx)
	a.cond = sync.NewCond(&a.mu)
	for range n {
		a.workers.Add(1)
		go a.worker()
	}
	return a
}

// worker runs the leads handed to it until work closes.
func (a *runAll) worker() {
	defer a.workers.Done()
	for j := range a.work {
		res := a.r.Run(a.wctx, j.lead)
		a.results <- runDone{i: j.i, res: res}
	}
}

// feed reads leads as workers free up and hands them out; an input error
// gets its result here. Once the input ends (or the run does), it closes
// results after the last lead has finished.
func (a *runAll) feed(leads iter.Seq2[map[string]any, error]) {
	defer func() {
		close(a.work)
		a.workers.Wait()
		a.r.run.undrain() // every lead of this RunAll has finished
		close(a.results)
	}()
	defer a.r.flush()
	i := 0
	for lead, err := range leads {
		if !a.room(i) || !a.take() {
			return
		}
		if err != nil {
			res := &Result{Outcome: Error, Reason: err.Error(), Class: ClassInput, Err: err, Steps: []StepResult{}}
			a.results <- runDone{i: i, res: res}
			i++
			continue
		}
		// announced before the hand-off, so a lead between here
		// and Run still joins the last batch
		a.r.expect(1)
		a.work <- runJob{i: i, lead: lead} // workers take every job until work closes
		i++
	}
}

// room waits, before lead i starts, while the results held back for
// reordering fill the budget; it returns false when the run is over.
func (a *runAll) room(i int) bool {
	a.mu.Lock()
	for !a.quit && !a.opt.Unordered && a.held >= a.budget && a.head < i {
		a.cond.Wait()
	}
	stop := a.quit
	a.mu.Unlock()
	return !stop && a.wctx.Err() == nil
}

// take claims the next slot, unless the run is over.
func (a *runAll) take() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.quit || a.wctx.Err() != nil {
		return false
	}
	a.handed++
	return true
}

// next receives a result; after ctx is done it waits only for the leads
// already handed out, not for the input (which may be blocked reading a
// terminal).
func (a *runAll) next() (runDone, bool) {
	select {
	case d, ok := <-a.results:
		if ok {
			a.received++
		}
		return d, ok
	case <-a.ctx.Done():
		a.mu.Lock()
		a.quit = true
		a.cond.Broadcast()
		all := a.received >= a.handed
		a.mu.Unlock()
		if all {
			return runDone{}, false
		}
		d, ok := <-a.results
		if ok {
			a.received++
		}
		return d, ok
	}
}

// finish ends a run whose consumer stopped: no new lead starts, the
// running ones are cancelled and their results drained.
func (a *runAll) finish() {
	a.mu.Lock()
	a.quit = true
	a.cond.Broadcast()
	a.mu.Unlock()
	a.cancel()
	go func() {
		for range a.results { // let the workers end
		}
	}()
}

// yieldUnordered yields results as they complete.
func (a *runAll) yieldUnordered(yield func(int, *Result) bool) {
	for d, ok := a.next(); ok; d, ok = a.next() {
		if !yield(d.i, d.res) {
			a.finish()
			return
		}
	}
}

// yieldOrdered yields results in input order, holding back those that
// finish before an earlier lead.
func (a *runAll) yieldOrdered(yield func(int, *Result) bool) {
	pending := map[int]runDone{}
	stopped := false
	for d, ok := a.next(); ok; d, ok = a.next() {
		if d.i != a.head {
			d.size = resultSize(d.res)
			a.mu.Lock()
			a.held += d.size
			a.mu.Unlock()
		}
		pending[d.i] = d
		for {
			next, ok := pending[a.head]
			if !ok {
				break
			}
			delete(pending, a.head)
			if !stopped && !yield(next.i, next.res) {
				stopped = true
			}
			a.release(next.size)
		}
		if stopped {
			a.finish()
			return
		}
	}
}

// release records that the result at head, of size bytes, was yielded (or
// dropped), which may make room for the feeder.
func (a *runAll) release(size int64) {
	a.mu.Lock()
	a.head++
	a.held -= size
	a.cond.Broadcast()
	a.mu.Unlock()
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
		for _, t := range sr.Notes {
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
