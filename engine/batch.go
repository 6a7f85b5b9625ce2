package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sync"
	"time"

	"github.com/tidwall/gjson"

	"github.com/plumbhq/plumb/parse"
	"github.com/plumbhq/plumb/steps"
	"github.com/plumbhq/plumb/template"
)

// batchSpec is a compiled batch: section.
type batchSpec struct {
	size    int
	wait    time.Duration
	results string
	id      string
	leadID  *template.Template
}

func (c *compiler) batch(b *steps.Batch) *batchSpec {
	src := b.LeadID
	if !src.IsSet() {
		src = steps.String{Value: "{{lead.id}}", Pos: b.Pos}
	}
	for _, k := range []struct{ key, path string }{{"results", b.Results}, {"id", b.ID}} {
		if err := parse.CheckJSONPath(k.path); err != nil {
			c.errs.Add(b.At(k.key), "", "batch: %s: %v", k.key, err)
		}
	}
	results := b.Results
	if results == "" {
		results = "@this"
	}
	return &batchSpec{size: b.Size, wait: b.Wait, results: results, id: b.ID, leadID: c.tmpl(src, template.Plain, scopeRequest)}
}

// runState is what the leads of one run share: their count and the batches
// being collected. Its Runner owns it; every lead of the runner shares it.
type runState struct {
	mu     sync.Mutex
	active int
	// expected counts leads announced with expect that have not
	// entered Run yet.
	expected int
	waiting  int
	// drains counts RunAlls whose input has ended and whose leads are
	// still running; closing is set by Close. Either sends partial batches
	// as soon as every running lead waits in one.
	drains  int
	closing bool
	open    map[*step]*pending
	// wg counts batch requests and batch timers in flight.
	wg sync.WaitGroup
}

// pending is a batch being collected.
type pending struct {
	id      string
	plan    *Plan
	st      *step
	s       *Runner
	members []*member
	ids     map[string]bool
	stop    context.CancelFunc
}

// member is one lead waiting in a batch.
type member struct {
	lead   map[string]any
	leadID string
	data   map[string]any
	answer chan batchAnswer
}

type batchAnswer struct {
	v               verdict
	method, url, id string
	attempts        int
	variant         int
}

func (rs *runState) enter() {
	if rs == nil {
		return
	}
	rs.mu.Lock()
	rs.active++
	if rs.expected > 0 {
		rs.expected--
	}
	rs.mu.Unlock()
}

func (rs *runState) leave() {
	if rs == nil {
		return
	}
	rs.mu.Lock()
	rs.active--
	ready := rs.drainable()
	rs.mu.Unlock()
	rs.flushAll(ready)
}

// drainable takes every open batch when draining and every running lead is
// waiting in one. rs.mu must be held.
func (rs *runState) drainable() []*pending {
	if (rs.drains == 0 && !rs.closing) || rs.waiting < rs.active+rs.expected || len(rs.open) == 0 {
		return nil
	}
	var out []*pending
	for st, b := range rs.open {
		out = append(out, b)
		delete(rs.open, st)
		rs.waiting -= len(b.members)
	}
	return out
}

func (rs *runState) flushAll(bs []*pending) {
	for _, b := range bs {
		rs.wg.Add(1)
		go func() {
			defer rs.wg.Done()
			b.flush()
		}()
	}
}

// drain switches the run to draining: from now on the batches being
// collected are sent as soon as every running lead waits in one, instead of
// waiting out their wait: for leads that are not coming. RunAll calls it
// when no more leads will start, Close on shutdown, so no lead is left
// behind.
func (rs *runState) drain() {
	rs.mu.Lock()
	rs.drains++
	ready := rs.drainable()
	rs.mu.Unlock()
	rs.flushAll(ready)
}

// expect announces that n more leads are about to be run (handed to
// workers that will call Run). A drain does not send a batch while
// announced leads have not arrived, so a lead between its hand-off and Run
// cannot miss the last batch. Each Run that starts takes one announcement
// back.
func (rs *runState) expect(n int) {
	if n <= 0 {
		return
	}
	rs.mu.Lock()
	rs.expected += n
	rs.mu.Unlock()
}

// unexpect takes back one announcement for a lead that will not run.
func (rs *runState) unexpect() {
	rs.mu.Lock()
	if rs.expected > 0 {
		rs.expected--
	}
	ready := rs.drainable()
	rs.mu.Unlock()
	rs.flushAll(ready)
}

// abandonExpected forgets every announced lead (the runner is closing:
// they will not run).
func (rs *runState) abandonExpected() {
	rs.mu.Lock()
	rs.expected = 0
	rs.closing = true
	ready := rs.drainable()
	rs.mu.Unlock()
	rs.flushAll(ready)
}

// undrain ends one drain: its RunAll's leads have all finished.
func (rs *runState) undrain() {
	rs.mu.Lock()
	rs.drains--
	rs.mu.Unlock()
}

// wait returns when no batch request or batch timer is running.
func (rs *runState) wait() { rs.wg.Wait() }

// runBatched adds the lead to its step's open batch and waits for the
// batch's answer.
func (s *Runner) runBatched(ctx context.Context, st *step, f *flow, data map[string]any, sr StepResult) StepResult {
	p := s.plan
	rs := s.run
	id, err := st.batch.leadID.Render(data)
	if err != nil {
		sr.Outcome, sr.Reason, sr.Class, sr.Err = Error, "batch lead id: "+err.Error(), ClassTemplate, err
		return sr
	}
	m := &member{lead: copyMap(f.lead), leadID: id, data: data, answer: make(chan batchAnswer, 1)}
	rs.mu.Lock()
	b := rs.open[st]
	if b != nil && b.ids[id] {
		// its answer could not be told from the other's
		rs.mu.Unlock()
		sr.Outcome, sr.Class = Error, ClassInput
		sr.Reason = fmt.Sprintf("batch %s already holds a lead with id %q: ids must be unique within a batch", b.id, id)
		return sr
	}
	if b == nil {
		if rs.open == nil {
			rs.open = map[*step]*pending{}
		}
		b = &pending{id: newBatchID(), plan: p, st: st, s: s, ids: map[string]bool{}}
		rs.open[st] = b
		tctx, stop := context.WithCancel(context.Background())
		b.stop = stop
		rs.wg.Add(1)
		go func() {
			defer rs.wg.Done()
			if p.clock.Sleep(tctx, st.batch.wait) == nil {
				rs.mu.Lock()
				if rs.open[st] == b {
					delete(rs.open, st)
					rs.waiting -= len(b.members)
				} else {
					b = nil
				}
				rs.mu.Unlock()
				if b != nil {
					b.flush()
				}
			}
		}()
	}
	b.members = append(b.members, m)
	b.ids[id] = true
	rs.waiting++
	var ready []*pending
	if len(b.members) >= st.batch.size {
		delete(rs.open, st)
		rs.waiting -= len(b.members)
		ready = []*pending{b}
	} else {
		ready = rs.drainable()
	}
	rs.mu.Unlock()
	rs.flushAll(ready)

	select {
	case a := <-m.answer:
		sr.Method, sr.URL, sr.Batch, sr.Attempts, sr.Variant = a.method, a.url, a.id, a.attempts, a.variant
		p.finish(ctx, st, a.v, data, f.lead, &sr)
	case <-ctx.Done():
		sr.Outcome, sr.Reason, sr.Class, sr.Err = Error, "waiting for batch "+b.id+": "+contextReason(ctx, ctx.Err()), endedClass(ctx), ctx.Err()
	}
	return sr
}

func newBatchID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// flush sends one batch request and answers every member.
func (b *pending) flush() {
	b.stop()
	defer func() {
		if v := recover(); v != nil {
			reason := fmt.Sprintf("batch %s: internal error (a bug in plumb, please report it): %v", b.id, v)
			for _, m := range b.members {
				select {
				case m.answer <- batchAnswer{id: b.id, v: verdict{outcome: Error, reason: b.s.Redact(reason), class: ClassInternal}}:
				default: // already answered
				}
			}
		}
	}()
	p, st, s := b.plan, b.st, b.s
	ctx := context.WithValue(context.Background(), stepKey{}, st.name)
	if st.deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = withDeadline(ctx, "step", st.deadline)
		defer cancel()
	}
	leads := make([]any, len(b.members))
	items := make([]any, len(b.members))
	for i, m := range b.members {
		leads[i] = m.lead
		items[i] = map[string]any{"index": i, "first": i == 0, "last": i == len(b.members)-1, "lead": m.lead, "id": m.leadID}
	}
	data := map[string]any{"settings": s.values, "lead": b.members[0].lead, "vars": map[string]any{}, "steps": map[string]any{},
		"batch": map[string]any{"id": b.id, "size": len(b.members), "leads": leads, "items": items}}
	answer := func(m *member, a batchAnswer) { m.answer <- a }
	req, err := p.build(ctx, st, data)
	if err != nil {
		for _, m := range b.members {
			answer(m, batchAnswer{id: b.id, v: verdict{outcome: Error, reason: s.Redact("building the batch request: " + err.Error()), class: ClassTemplate, err: err}})
		}
		return
	}
	req.mask = s.mask
	base := batchAnswer{id: b.id, method: req.method, url: s.mask.url(req.url), variant: req.variant}
	var sr StepResult
	resp, v, _ := s.exchange(ctx, st, req, data, &sr)
	base.attempts = sr.Attempts
	if v.outcome != Success {
		v.reason = s.Redact(v.reason + " (batch " + b.id + ")")
		for _, m := range b.members {
			a := base
			a.v = verdict{outcome: v.outcome, reason: v.reason, status: v.status, class: v.class, err: v.err}
			answer(m, a)
		}
		return
	}
	if err := parse.CheckDepth(resp.Body, parse.JSON, 0); err != nil {
		for _, m := range b.members {
			a := base
			a.v = verdict{outcome: Error, status: resp.Status, reason: fmt.Sprintf("batch %s: %v", b.id, err), class: ClassCapture, err: err}
			answer(m, a)
		}
		return
	}
	byID := map[string]string{}
	gjson.GetBytes(resp.Body, st.batch.results).ForEach(func(_, r gjson.Result) bool {
		byID[r.Get(st.batch.id).String()] = r.Raw
		return true
	})
	// captures, outcomes and appends of each lead may read the whole answer
	// and the batch's id and size
	format := st.format
	if format == "" {
		format = parse.JSON // batch answers are read as JSON (results:, id:)
	}
	whole := responseValue(parse.NewDoc(resp, format))
	for _, m := range b.members {
		m.data["batch"] = map[string]any{"id": b.id, "size": len(b.members), "response": whole}
	}
	for _, m := range b.members {
		a := base
		raw, ok := byID[m.leadID]
		if !ok {
			a.v = verdict{outcome: Error, status: resp.Status, reason: fmt.Sprintf("batch %s: the response has no result for lead id %q", b.id, m.leadID), class: ClassCapture}
		} else {
			one := parse.Response{Status: resp.Status, Header: resp.Header, Body: []byte(raw)}
			a.v = p.judge(st, req, one, nil, m.data, s.mem)
			a.v.reason = s.Redact(a.v.reason)
		}
		answer(m, a)
	}
}
