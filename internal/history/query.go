package history

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Bounds of a query: the API is untrusted input.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
	// DefaultScanBudget bounds the records one page looks at; a page that
	// runs out of it ends early with a cursor to go on from.
	DefaultScanBudget = 20000
	// MaxQ bounds the q= text.
	MaxQ = 200
)

// ErrBadCursor: a cursor that is not one the store handed out.
var ErrBadCursor = errors.New("history: bad cursor")

// Query selects records, newest first. Empty fields match everything.
type Query struct {
	Integration, Batch, Outcome, Class string
	// Q matches records whose lead id, request id, reason or a step's
	// reason contains it (case-insensitive).
	Q string
	// Since and Until bound Finished (Since included, Until excluded).
	Since, Until time.Time
	// Limit is the page size (default DefaultLimit, at most MaxLimit).
	Limit int
	// Cursor is a Page.Next: where the previous page stopped.
	Cursor string
}

// Page is one page of a query. Next is "" on the last page.
type Page struct {
	Records []Record `json:"leads"`
	Next    string   `json:"next,omitempty"`
}

func parseCursor(c string) (uint64, error) {
	if c == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(c, 36, 64)
	if err != nil || n == 0 {
		return 0, ErrBadCursor
	}
	return n, nil
}

func (q *Query) match(r *Record) bool {
	switch {
	case q.Integration != "" && r.Integration != q.Integration,
		q.Outcome != "" && r.Outcome != q.Outcome,
		q.Class != "" && r.Class != q.Class,
		q.Batch != "" && r.Batch != q.Batch,
		!q.Since.IsZero() && r.Finished.Before(q.Since),
		!q.Until.IsZero() && !r.Finished.Before(q.Until):
		return false
	}
	if q.Q == "" {
		return true
	}
	needle := strings.ToLower(q.Q)
	has := func(s string) bool { return strings.Contains(strings.ToLower(s), needle) }
	if has(r.ID) || has(r.RequestID) || has(r.Reason) {
		return true
	}
	for _, st := range r.Steps {
		if has(st.Reason) {
			return true
		}
	}
	return false
}

// List answers one page of q. Pages are stable while leads are added: a
// cursor names a position in the store's order (newest first), and new
// records go before the first page, never between pages.
func (s *Store) List(ctx context.Context, q Query) (Page, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultLimit
	}
	q.Limit = min(q.Limit, MaxLimit)
	if len(q.Q) > MaxQ {
		return Page{}, fmt.Errorf("history: q is longer than %d bytes", MaxQ)
	}
	start, err := parseCursor(q.Cursor)
	if err != nil {
		return Page{}, err
	}
	page := Page{Records: []Record{}}
	err = s.db.View(func(tx *bolt.Tx) error {
		recs := tx.Bucket(bRec)
		next := s.iter(tx, q.Batch, start)
		for scanned := 0; ; scanned++ {
			if scanned%256 == 0 && ctx.Err() != nil {
				return ctx.Err()
			}
			seq, ok := next()
			if !ok {
				return nil
			}
			if scanned >= s.cfg.ScanBudget || len(page.Records) == q.Limit {
				page.Next = strconv.FormatUint(seq+1, 36) // resume at seq
				return nil
			}
			v := recs.Get(binary.BigEndian.AppendUint64(nil, seq))
			if len(v) < 8 {
				continue
			}
			if !q.Since.IsZero() && int64(binary.BigEndian.Uint64(v)) < q.Since.UnixNano() {
				return nil // committed before Since: so is every older record
			}
			var r Record
			if json.Unmarshal(v[8:], &r) != nil || !q.match(&r) {
				continue
			}
			page.Records = append(page.Records, r)
		}
	})
	if err != nil {
		return Page{}, fmt.Errorf("history: %w", err)
	}
	return page, nil
}

// iter walks record sequence numbers below start (0: from the newest),
// newest first: every record, or a batch's through its index.
func (s *Store) iter(tx *bolt.Tx, batch string, start uint64) func() (uint64, bool) {
	if batch == "" {
		c := tx.Bucket(bRec).Cursor()
		var k []byte
		first := true
		return func() (uint64, bool) {
			if first {
				first = false
				if start == 0 {
					k, _ = c.Last()
				} else {
					k, _ = c.Seek(binary.BigEndian.AppendUint64(nil, start))
					if k == nil {
						k, _ = c.Last()
					} else {
						k, _ = c.Prev()
					}
				}
			} else {
				k, _ = c.Prev()
			}
			if len(k) != 8 {
				return 0, false
			}
			return binary.BigEndian.Uint64(k), true
		}
	}
	prefix := append([]byte(batch), 0)
	c := tx.Bucket(bBx).Cursor()
	var k []byte
	first := true
	return func() (uint64, bool) {
		if first {
			first = false
			end := start
			if end == 0 {
				end = ^uint64(0)
			}
			k, _ = c.Seek(binary.BigEndian.AppendUint64(bytes.Clone(prefix), end))
			if k == nil {
				k, _ = c.Last()
			} else {
				k, _ = c.Prev()
			}
		} else {
			k, _ = c.Prev()
		}
		if k == nil || !bytes.HasPrefix(k, prefix) || len(k) != len(prefix)+8 {
			return 0, false
		}
		return binary.BigEndian.Uint64(k[len(prefix):]), true
	}
}

// Each calls fn for every record q matches, newest first, a page at a
// time (one short read transaction each), until fn returns an error.
func (s *Store) Each(ctx context.Context, q Query, fn func(Record) error) error {
	q.Limit = MaxLimit
	for {
		p, err := s.List(ctx, q)
		if err != nil {
			return err
		}
		for _, r := range p.Records {
			if err := fn(r); err != nil {
				return err
			}
		}
		if p.Next == "" {
			return nil
		}
		q.Cursor = p.Next
	}
}

// Get returns the record of a lead (found false when there is none).
func (s *Store) Get(id string) (r Record, found bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		k := tx.Bucket(bID).Get([]byte(id))
		if k == nil {
			return nil
		}
		v := tx.Bucket(bRec).Get(k)
		if len(v) < 8 {
			return nil
		}
		found = true
		return json.Unmarshal(v[8:], &r)
	})
	if err != nil {
		return Record{}, false, fmt.Errorf("history: %w", err)
	}
	return r, found, nil
}
