package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/plumbhq/plumb/store"
)

// fallback walks the step's fallback chain after the primary request gave
// up with v. The first link that answers decides the step; when none does
// the step is an error listing why each failed.
func (s *Runner) fallback(ctx context.Context, st *step, primary *request, key string, v verdict, data map[string]any, sr *StepResult) verdict {
	p := s.plan
	sr.Tried = append(sr.Tried, "primary: "+v.reason)
	for _, f := range st.fallback {
		switch f.kind {
		case "request":
			req, err := p.override(ctx, st, f, primary, data)
			if err != nil {
				sr.Tried = append(sr.Tried, "request: "+err.Error())
				continue
			}
			sr.Attempts++
			req.fallback = true
			resp, t := s.attempt(ctx, st, req, sr.Attempts)
			fv := p.judge(st, req, resp, t.err, data, s.mem)
			s.tried(ctx, st, req, &t, resp, &fv, nil, "")
			s.mem.give(req.reserved)
			req.reserved = 0
			if fv.outcome == Success {
				sr.Fallback = "request"
				if st.cached {
					s.remember(ctx, st, key, fv.captured)
				}
				return fv
			}
			sr.Tried = append(sr.Tried, "request: "+fv.reason)
		case "cache":
			if key == "" {
				sr.Tried = append(sr.Tried, "cache: no cache key for this lead")
				continue
			}
			e, found, err := s.store.Get(ctx, key)
			switch {
			case err != nil:
				sr.Tried = append(sr.Tried, "cache: "+err.Error())
			case !found:
				sr.Tried = append(sr.Tried, "cache: no earlier answer for this request")
			case p.clock.Now().Sub(e.At) > f.maxAge:
				sr.Tried = append(sr.Tried, fmt.Sprintf("cache: last answer is %s old (max_age %s)", p.clock.Now().Sub(e.At).Round(time.Second), f.maxAge))
			default:
				sr.Fallback = "cache"
				return verdict{outcome: Success, captured: e.Values, reason: "answered from cache (stored " + e.At.UTC().Format(time.RFC3339) + ")"}
			}
		case "defaults":
			captured := make(map[string]any, len(st.captures)+len(f.defaults))
			for _, c := range st.captures {
				captured[c.name] = nil
			}
			failed := false
			for _, d := range f.defaults {
				x, err := d.val.eval(ctx, data)
				if err != nil {
					sr.Tried = append(sr.Tried, fmt.Sprintf("defaults: %s: %v", d.name, err))
					failed = true
					break
				}
				captured[d.name] = x
			}
			if failed {
				continue
			}
			sr.Fallback = "defaults"
			return verdict{outcome: Success, captured: captured, reason: "defaults used", flag: f.flag}
		case "skip":
			note := "skipped by fallback"
			if f.note != nil {
				if n, err := f.note.Render(data); err == nil {
					note = n
				}
			}
			sr.Fallback = "skip"
			return verdict{outcome: Skip, reason: note}
		}
	}
	v.reason = "no fallback answered: " + strings.Join(sr.Tried, "; ")
	return v
}

// override renders a secondary request: the primary with the link's changes.
func (p *Plan) override(ctx context.Context, st *step, f *fallback, primary *request, data map[string]any) (*request, error) {
	r := &request{method: primary.method, url: primary.url, header: primary.header.Clone(), body: primary.body, timeout: primary.timeout, auth: primary.auth, variant: primary.variant, mask: primary.mask}
	if f.timeout > 0 {
		r.timeout = f.timeout
	}
	if f.method != "" {
		r.method = f.method
	}
	if f.url != nil {
		u, err := renderURL(ctx, f.url, data)
		if err != nil {
			return nil, err
		}
		r.url = u
	}
	for _, h := range f.headers {
		v, err := h.val.RenderContext(ctx, data)
		if err != nil {
			return nil, fmt.Errorf("header %s: %w", h.key, err)
		}
		r.header.Set(h.key, v)
	}
	return r, nil
}

// cacheKey is the key of the step's last-known-good answer for this lead:
// the rendered key template, or a hash of the request.
func (p *Plan) cacheKey(st *step, req *request, data map[string]any) (string, error) {
	if st.cacheKey != nil {
		k, err := st.cacheKey.Render(data)
		return p.Name() + "/" + st.name + "/" + k, err
	}
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00%s\x00", req.method, req.url)
	h.Write(req.body)
	return p.Name() + "/" + st.name + "/" + hex.EncodeToString(h.Sum(nil)), nil
}

// remember stores a step's captures for later leads, with the runner's
// secrets (settings, credentials, tokens) masked: a stored answer never
// holds a credential, though a partner echoed one. A lead's redacted
// captures are its own and kept as captured (a cached answer must give
// them back).
func (s *Runner) remember(ctx context.Context, st *step, key string, captured map[string]any) {
	p := s.plan
	captured = s.mask.valueMap(captured)
	if err := s.store.Put(ctx, key, store.Entry{Values: captured, At: p.clock.Now()}); err != nil {
		p.log.WarnContext(ctx, "cache put failed", "step", st.name, "error", err)
	}
}
