// Package recordlog keeps values by key in append-only segment files on
// disk: many values are written with one write and one fdatasync (group
// commit), and a value is read back from disk by its key, so that the
// memory a Log takes does not depend on how many values it keeps.
//
// It is the embedded queue's store of job records (internal/queue): one
// record per job, written by the queue's committer, read by status and
// result lookups.
//
// # Layout
//
// A Log is a directory of segments, NNNNNNNNNNNN.seg, each a sequence of
// frames:
//
//	u32 length of what follows the checksum
//	u32 CRC-32C of what follows it
//	i64 time written (Unix nanoseconds)
//	u16 key length, key, value
//
// The last segment takes the appends; the keys it holds are in memory
// (hash → offset, bounded by Options.SegmentRecords). A full segment — by
// records, bytes or age — is sealed: its index, NNNNNNNNNNNN.idx, lists
// each key's newest frame as (64-bit hash, offset) sorted by hash, and
// only every 256th hash stays in memory, to find the 4 KiB block of the
// index a lookup reads. A lookup tries the segments newest first: the
// active one in memory, each sealed one with one read of its index and
// one of the frame.
//
// Segments whose newest frame is older than Options.TTL are deleted whole,
// so a value is kept at least TTL and at most TTL plus the span of its
// segment (Options.SegmentAge).
//
// # Memory
//
// A Log holds in memory the keys of its active segment (a map of 64-bit
// hash to offset, at most SegmentRecords entries: about 2.5 MiB at the
// default 65,536) and, per sealed segment, every 256th hash of its index
// (8 bytes per 256 keys: 31 KiB for 1,000,000 keys) and its two open
// files — nothing per value beyond that (Stats counts both). Values are
// read with pread, not mapped: they stay in the page cache, not the heap
// or the process's RSS.
//
// # Durability
//
// Append returns once the frames are written and fdatasync'ed, and only
// then are they visible to Get. A new segment's directory entry is synced
// before anything is appended to it. At Open, a segment's tail that does
// not read back whole (a crash in the middle of an append, which had not
// returned) is cut off; a sealed segment whose index is missing or damaged
// is indexed again from its frames.
package recordlog

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"hash/fnv"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plumbhq/plumb/internal/atomicfile"
)

// ErrNotFound: no value for the key.
var ErrNotFound = errors.New("recordlog: not found")

// ErrClosed: the Log was closed.
var ErrClosed = errors.New("recordlog: closed")

// Defaults of Options.
const (
	DefaultSegmentRecords = 1 << 16
	DefaultSegmentBytes   = 64 << 20
	// MaxKey is the longest key.
	MaxKey = 1024
	// MaxValue is the largest value.
	MaxValue = 64 << 20
)

// Options configure Open.
type Options struct {
	// Dir holds the segments (created 0700 if missing). Required.
	Dir string
	// TTL: a segment whose newest value is older is deleted. 0: never.
	TTL time.Duration
	// SegmentRecords and SegmentBytes seal the active segment once it
	// holds that many frames or bytes (defaults 65,536 and 64 MiB).
	SegmentRecords int
	SegmentBytes   int64
	// SegmentAge seals the active segment once its first frame is that old
	// (default TTL/24, so that values outlive TTL by at most 1/24 of it).
	SegmentAge time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Written, when set, is called by Append once a batch's frames are
	// written to the segment file at path (n bytes from off) and before
	// they are synced: the moment a crash test stops the process at
	// (internal/queue's Config.CommitHook). Nothing in production sets it.
	Written func(entries []Entry, path string, off, n int64)
	// sync replaces fdatasync, hash the keys' hash (tests).
	sync func(*os.File) error
	hash func(string) uint64
}

// Entry is one value to append.
type Entry struct {
	Key   string
	Value []byte
}

// Log is an open directory of segments. It is safe for concurrent use;
// appends are serialised.
type Log struct {
	opts Options
	wmu  sync.Mutex // serialises appends, seals and expiry

	mu     sync.RWMutex // guards what Get reads
	sealed []*segment   // oldest first
	active *segment
	keys   map[uint64]uint64 // the active segment's keys: hash → offset
	// collided: keys of the active segment whose hash another key of it
	// has (key → offset)
	collided map[string]uint64
	closed   bool
}

// segment is one segment file.
type segment struct {
	id    uint64
	f     *os.File
	size  int64 // bytes of whole frames
	count int   // frames
	first time.Time
	last  time.Time
	// sealed segments: the index file and every fenceEvery-th hash
	idx   *os.File
	n     int // index entries
	fence []uint64
}

const (
	frameHead  = 4 + 4 + 8 + 2
	entrySize  = 16
	fenceEvery = 256
	idxMagic   = "PLRL1\n"
	// idxHead: the magic, the entries, the frames, the first and newest
	// times
	idxHead = len(idxMagic) + 4 + 4 + 8 + 8
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func hashKey(key string) uint64 {
	h := fnv.New64a()
	_, _ = io.WriteString(h, key)
	return h.Sum64()
}

// Open opens (creating) the log in opts.Dir: it indexes sealed segments
// whose index is missing or damaged and reads the active one's keys,
// cutting off a torn tail.
func Open(opts Options) (*Log, error) {
	if opts.Dir == "" {
		return nil, errors.New("recordlog: a directory is required")
	}
	if opts.SegmentRecords <= 0 {
		opts.SegmentRecords = DefaultSegmentRecords
	}
	if opts.SegmentBytes <= 0 {
		opts.SegmentBytes = DefaultSegmentBytes
	}
	if opts.SegmentAge <= 0 && opts.TTL > 0 {
		opts.SegmentAge = opts.TTL / 24
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.sync == nil {
		opts.sync = fdatasync
	}
	if opts.hash == nil {
		opts.hash = hashKey
	}
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("recordlog: %w", err)
	}
	l := &Log{opts: opts, keys: map[uint64]uint64{}, collided: map[string]uint64{}}
	ids, err := l.segmentIDs()
	if err != nil {
		return nil, err
	}
	for i, id := range ids {
		s, err := l.openSegment(id)
		if err != nil {
			l.closeFiles()
			return nil, err
		}
		if i < len(ids)-1 {
			if err := l.loadIndex(s); err != nil {
				_ = s.f.Close()
				l.closeFiles()
				return nil, err
			}
			l.sealed = append(l.sealed, s)
			continue
		}
		l.active = s
		if err := l.readActive(); err != nil {
			l.closeFiles()
			return nil, err
		}
	}
	if l.active == nil {
		if l.active, err = l.newSegment(1); err != nil {
			l.closeFiles()
			return nil, err
		}
	}
	l.removeTemps()
	return l, nil
}

// removeTemps removes what an index write cut short by a crash left.
func (l *Log) removeTemps() {
	tmps, _ := filepath.Glob(filepath.Join(l.opts.Dir, ".*.tmp"))
	for _, t := range tmps {
		_ = os.Remove(t)
	}
}

func (l *Log) segmentIDs() ([]uint64, error) {
	names, err := filepath.Glob(filepath.Join(l.opts.Dir, "*.seg"))
	if err != nil {
		return nil, fmt.Errorf("recordlog: %w", err)
	}
	var ids []uint64
	for _, n := range names {
		id, err := strconv.ParseUint(strings.TrimSuffix(filepath.Base(n), ".seg"), 10, 64)
		if err == nil && id > 0 {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (l *Log) path(id uint64, ext string) string {
	return filepath.Join(l.opts.Dir, fmt.Sprintf("%012d.%s", id, ext))
}

func (l *Log) openSegment(id uint64) (*segment, error) {
	f, err := os.OpenFile(l.path(id, "seg"), os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recordlog: %w", err)
	}
	return &segment{id: id, f: f}, nil
}

// frame is one frame read back.
type frame struct {
	off   int64
	at    time.Time
	key   string
	value []byte
}

// scanFrames calls fn with each whole frame of s from the start and
// returns the size of the whole frames (where a torn or damaged tail
// begins). fn may keep the frame.
func scanFrames(f *os.File, fn func(fr frame)) (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	r := io.NewSectionReader(f, 0, st.Size())
	var head [frameHead]byte
	off := int64(0)
	for {
		if _, err := io.ReadFull(r, head[:]); err != nil {
			return off, nil // end, or a torn head
		}
		fr, n, ok := parseFrame(head[:], r)
		if !ok {
			return off, nil
		}
		fr.off = off
		fn(fr)
		off += n
	}
}

// parseFrame reads the rest of a frame whose head is head from r.
func parseFrame(head []byte, r io.Reader) (fr frame, n int64, ok bool) {
	length := binary.LittleEndian.Uint32(head[0:4])
	sum := binary.LittleEndian.Uint32(head[4:8])
	if length < 8+2 || length > MaxKey+MaxValue+16 {
		return fr, 0, false
	}
	body := make([]byte, length)
	copy(body, head[8:])
	if _, err := io.ReadFull(r, body[frameHead-8:]); err != nil {
		return fr, 0, false
	}
	if crc32.Checksum(body, castagnoli) != sum {
		return fr, 0, false
	}
	klen := int(binary.LittleEndian.Uint16(body[8:10]))
	if 10+klen > len(body) {
		return fr, 0, false
	}
	fr.at = time.Unix(0, int64(binary.LittleEndian.Uint64(body[0:8])))
	fr.key = string(body[10 : 10+klen])
	fr.value = body[10+klen:]
	return fr, 8 + int64(length), true
}

// readActive reads the active segment's keys and cuts off a torn tail.
func (l *Log) readActive() error {
	s := l.active
	size, err := scanFrames(s.f, func(fr frame) {
		l.index(fr.key, fr.off)
		s.note(fr.at)
	})
	if err != nil {
		return fmt.Errorf("recordlog: reading %s: %w", s.f.Name(), err)
	}
	if st, err := s.f.Stat(); err == nil && st.Size() > size {
		if err := s.f.Truncate(size); err != nil {
			return fmt.Errorf("recordlog: cutting the torn tail of %s: %w", s.f.Name(), err)
		}
	}
	s.size = size
	return nil
}

// note counts a frame written at at.
func (s *segment) note(at time.Time) {
	s.count++
	if s.first.IsZero() || at.Before(s.first) {
		s.first = at
	}
	if at.After(s.last) {
		s.last = at
	}
}

// index records that the active segment holds key at off.
func (l *Log) index(key string, off int64) {
	h := l.opts.hash(key)
	if prev, ok := l.keys[h]; ok {
		if k, err := l.keyAt(l.active, int64(prev)); err == nil && k != key {
			l.collided[key] = uint64(off)
			return
		}
	}
	l.keys[h] = uint64(off)
}

// keyAt reads the key of the frame at off of s.
func (l *Log) keyAt(s *segment, off int64) (string, error) {
	fr, err := readFrame(s.f, off)
	return fr.key, err
}

// readFrame reads the frame at off of f.
func readFrame(f *os.File, off int64) (frame, error) {
	var head [frameHead]byte
	if _, err := f.ReadAt(head[:], off); err != nil {
		return frame{}, err
	}
	length := binary.LittleEndian.Uint32(head[0:4])
	r := io.NewSectionReader(f, off+frameHead, int64(length))
	fr, _, ok := parseFrame(head[:], r)
	if !ok {
		return frame{}, fmt.Errorf("recordlog: damaged frame at %d of %s", off, f.Name())
	}
	fr.off = off
	return fr, nil
}

// newSegment creates segment id, its directory entry synced.
func (l *Log) newSegment(id uint64) (*segment, error) {
	f, err := os.OpenFile(l.path(id, "seg"), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, fmt.Errorf("recordlog: %w", err)
	}
	if err := syncDir(l.opts.Dir); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("recordlog: %w", err)
	}
	return &segment{id: id, f: f}, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Append writes entries as frames with one write and one fdatasync, then
// makes them visible, and returns their versions (see Get). On an error
// nothing of it is visible (and the segment is cut back to where it was).
func (l *Log) Append(entries []Entry) ([]uint64, error) {
	if len(entries) == 0 {
		return nil, nil
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.isClosed() {
		return nil, ErrClosed
	}
	now := l.opts.Now()
	if err := l.maintain(now); err != nil {
		return nil, err
	}
	s := l.active
	var buf bytes.Buffer
	offs := make([]int64, len(entries))
	for i, e := range entries {
		if len(e.Key) == 0 || len(e.Key) > MaxKey || len(e.Value) > MaxValue {
			return nil, fmt.Errorf("recordlog: an entry with a %d-byte key and a %d-byte value: want keys of 1..%d bytes, values of at most %d",
				len(e.Key), len(e.Value), MaxKey, MaxValue)
		}
		offs[i] = s.size + int64(buf.Len())
		appendFrame(&buf, now, e)
	}
	if _, err := s.f.WriteAt(buf.Bytes(), s.size); err != nil {
		_ = s.f.Truncate(s.size)
		return nil, fmt.Errorf("recordlog: writing: %w", err)
	}
	if l.opts.Written != nil {
		l.opts.Written(entries, s.f.Name(), s.size, int64(buf.Len()))
	}
	if err := l.opts.sync(s.f); err != nil {
		_ = s.f.Truncate(s.size)
		return nil, fmt.Errorf("recordlog: syncing: %w", err)
	}
	vers := make([]uint64, len(entries))
	l.mu.Lock()
	for i, e := range entries {
		l.index(e.Key, offs[i])
		s.note(now)
		vers[i] = s.id<<40 | uint64(offs[i])
	}
	s.size += int64(buf.Len())
	l.mu.Unlock()
	return vers, nil
}

// Recent returns the version of key's newest value if the active segment
// holds it, without reading older segments: what a writer checks when it
// knows the key is new unless it was written lately.
func (l *Log) Recent(key string) (version uint64, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return 0, false
	}
	off, ok := l.collided[key]
	if !ok {
		if off, ok = l.keys[l.opts.hash(key)]; !ok {
			return 0, false
		}
		if k, err := l.keyAt(l.active, int64(off)); err != nil || k != key {
			return 0, false
		}
	}
	return l.active.id<<40 | off, true
}

func appendFrame(buf *bytes.Buffer, at time.Time, e Entry) {
	length := 8 + 2 + len(e.Key) + len(e.Value)
	body := make([]byte, length)
	binary.LittleEndian.PutUint64(body[0:8], uint64(at.UnixNano()))
	binary.LittleEndian.PutUint16(body[8:10], uint16(len(e.Key)))
	copy(body[10:], e.Key)
	copy(body[10+len(e.Key):], e.Value)
	var head [8]byte
	binary.LittleEndian.PutUint32(head[0:4], uint32(length))
	binary.LittleEndian.PutUint32(head[4:8], crc32.Checksum(body, castagnoli))
	buf.Write(head[:])
	buf.Write(body)
}

func (l *Log) isClosed() bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.closed
}

// maintain seals a full or old active segment and deletes expired ones.
// wmu is held.
func (l *Log) maintain(now time.Time) error {
	s := l.active
	full := s.count >= l.opts.SegmentRecords || s.size >= l.opts.SegmentBytes ||
		(l.opts.SegmentAge > 0 && s.count > 0 && now.Sub(s.first) >= l.opts.SegmentAge)
	if full {
		if err := l.seal(); err != nil {
			return err
		}
	}
	return l.expire(now)
}

// seal writes the active segment's index and starts a new segment.
func (l *Log) seal() error {
	s := l.active
	entries := make([]uint64, 0, 2*(len(l.keys)+len(l.collided)))
	for h, off := range l.keys {
		entries = append(entries, h, off)
	}
	for k, off := range l.collided {
		entries = append(entries, l.opts.hash(k), off)
	}
	if err := writeIndex(l.path(s.id, "idx"), entries, s); err != nil {
		return err
	}
	next, err := l.newSegment(s.id + 1)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err := l.loadIndex(s); err != nil {
		_ = next.f.Close()
		return err
	}
	l.sealed = append(l.sealed, s)
	l.active = next
	l.keys, l.collided = map[uint64]uint64{}, map[string]uint64{}
	return nil
}

// writeIndex writes pairs (hash, offset), sorted by hash, as the index
// file of s (with its frame count and times).
func writeIndex(path string, pairs []uint64, s *segment) error {
	n := len(pairs) / 2
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.Slice(order, func(a, b int) bool {
		ha, hb := pairs[2*order[a]], pairs[2*order[b]]
		if ha != hb {
			return ha < hb
		}
		return pairs[2*order[a]+1] < pairs[2*order[b]+1]
	})
	buf := make([]byte, 0, idxHead+n*entrySize+4)
	buf = append(buf, idxMagic...)
	buf = binary.LittleEndian.AppendUint32(buf, uint32(n))
	buf = binary.LittleEndian.AppendUint32(buf, uint32(s.count))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(s.first.UnixNano()))
	buf = binary.LittleEndian.AppendUint64(buf, uint64(s.last.UnixNano()))
	for _, i := range order {
		buf = binary.LittleEndian.AppendUint64(buf, pairs[2*i])
		buf = binary.LittleEndian.AppendUint64(buf, pairs[2*i+1])
	}
	buf = binary.LittleEndian.AppendUint32(buf, crc32.Checksum(buf, castagnoli))
	if err := atomicfile.Write(path, buf, 0o600); err != nil {
		return fmt.Errorf("recordlog: writing an index: %w", err)
	}
	return nil
}

// loadIndex opens s's index and keeps its fence and its segment's times;
// a missing or damaged index is made again from the segment's frames.
func (l *Log) loadIndex(s *segment) error {
	path := l.path(s.id, "idx")
	b, err := os.ReadFile(path)
	if err != nil || !validIndex(b) {
		if err := l.reindex(s); err != nil {
			return err
		}
		if b, err = os.ReadFile(path); err != nil || !validIndex(b) {
			return fmt.Errorf("recordlog: the index of %s does not read back", s.f.Name())
		}
	}
	n := int(binary.LittleEndian.Uint32(b[len(idxMagic):]))
	s.n = n
	s.count = int(binary.LittleEndian.Uint32(b[len(idxMagic)+4:]))
	s.first = time.Unix(0, int64(binary.LittleEndian.Uint64(b[len(idxMagic)+8:])))
	s.last = time.Unix(0, int64(binary.LittleEndian.Uint64(b[len(idxMagic)+16:])))
	s.fence = s.fence[:0]
	body := b[idxHead:]
	for i := 0; i < n; i += fenceEvery {
		s.fence = append(s.fence, binary.LittleEndian.Uint64(body[i*entrySize:]))
	}
	if s.idx != nil {
		_ = s.idx.Close()
	}
	if s.idx, err = os.Open(path); err != nil {
		return fmt.Errorf("recordlog: %w", err)
	}
	if st, err := s.f.Stat(); err == nil {
		s.size = st.Size()
	}
	return nil
}

func validIndex(b []byte) bool {
	if len(b) < idxHead+4 || string(b[:len(idxMagic)]) != idxMagic {
		return false
	}
	n := int(binary.LittleEndian.Uint32(b[len(idxMagic):]))
	if len(b) != idxHead+n*entrySize+4 {
		return false
	}
	return crc32.Checksum(b[:len(b)-4], castagnoli) == binary.LittleEndian.Uint32(b[len(b)-4:])
}

// reindex makes s's index again from its frames (the newest of each key).
func (l *Log) reindex(s *segment) error {
	keys := map[string]uint64{}
	s.count, s.first, s.last = 0, time.Time{}, time.Time{}
	size, err := scanFrames(s.f, func(fr frame) {
		keys[fr.key] = uint64(fr.off)
		s.note(fr.at)
	})
	if err != nil {
		return fmt.Errorf("recordlog: reading %s: %w", s.f.Name(), err)
	}
	s.size = size
	pairs := make([]uint64, 0, 2*len(keys))
	for k, off := range keys {
		pairs = append(pairs, l.opts.hash(k), off)
	}
	return writeIndex(l.path(s.id, "idx"), pairs, s)
}

// expire deletes the sealed segments whose newest frame is older than
// TTL, and empties an active one in that state. wmu is held.
func (l *Log) expire(now time.Time) error {
	if l.opts.TTL <= 0 {
		return nil
	}
	cut := now.Add(-l.opts.TTL)
	l.mu.Lock()
	var gone []*segment
	for len(l.sealed) > 0 && l.sealed[0].last.Before(cut) {
		gone = append(gone, l.sealed[0])
		l.sealed = l.sealed[1:]
	}
	l.mu.Unlock()
	for _, s := range gone {
		_ = s.f.Close()
		_ = s.idx.Close()
		if err := errors.Join(os.Remove(l.path(s.id, "idx")), os.Remove(l.path(s.id, "seg"))); err != nil {
			return fmt.Errorf("recordlog: deleting an expired segment: %w", err)
		}
	}
	if a := l.active; a.count > 0 && a.last.Before(cut) {
		return l.seal() // sealed now, deleted by the next expiry
	}
	return nil
}

// Get returns the newest value of key and where it is (a version that
// grows with every append: what a conditional writer compares), or
// ErrNotFound.
func (l *Log) Get(key string) (value []byte, version uint64, err error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, 0, ErrClosed
	}
	h := l.opts.hash(key)
	if off, ok := l.collided[key]; ok {
		return l.read(l.active, int64(off), key)
	}
	if off, ok := l.keys[h]; ok {
		v, ver, err := l.read(l.active, int64(off), key)
		if !errors.Is(err, ErrNotFound) {
			return v, ver, err
		}
	}
	for i := len(l.sealed) - 1; i >= 0; i-- {
		v, ver, err := l.lookup(l.sealed[i], h, key)
		if !errors.Is(err, ErrNotFound) {
			return v, ver, err
		}
	}
	return nil, 0, ErrNotFound
}

// read reads the frame at off of s if it holds key.
func (l *Log) read(s *segment, off int64, key string) ([]byte, uint64, error) {
	fr, err := readFrame(s.f, off)
	if err != nil {
		return nil, 0, err
	}
	if fr.key != key {
		return nil, 0, ErrNotFound
	}
	return fr.value, s.id<<40 | uint64(off), nil
}

// lookup finds key (hash h) in sealed segment s: the index block the
// fence points at, then the frames it names.
func (l *Log) lookup(s *segment, h uint64, key string) ([]byte, uint64, error) {
	if s.n == 0 {
		return nil, 0, ErrNotFound
	}
	// the last block whose first hash is <= h (equal hashes may begin in
	// the block before)
	b := sort.Search(len(s.fence), func(i int) bool { return s.fence[i] > h }) - 1
	if b < 0 {
		return nil, 0, ErrNotFound
	}
	for b > 0 && s.fence[b] == h {
		b--
	}
	for ; b < len(s.fence); b++ {
		lo := b * fenceEvery
		hi := min(lo+fenceEvery, s.n)
		block := make([]byte, (hi-lo)*entrySize)
		if _, err := s.idx.ReadAt(block, int64(idxHead+lo*entrySize)); err != nil {
			return nil, 0, fmt.Errorf("recordlog: reading the index of %s: %w", s.f.Name(), err)
		}
		n := hi - lo
		i := sort.Search(n, func(i int) bool { return binary.LittleEndian.Uint64(block[i*entrySize:]) >= h })
		for ; i < n; i++ {
			eh := binary.LittleEndian.Uint64(block[i*entrySize:])
			if eh != h {
				return nil, 0, ErrNotFound
			}
			off := int64(binary.LittleEndian.Uint64(block[i*entrySize+8:]))
			v, ver, err := l.read(s, off, key)
			if !errors.Is(err, ErrNotFound) {
				return v, ver, err
			}
		}
		if b+1 < len(s.fence) && s.fence[b+1] != h {
			return nil, 0, ErrNotFound
		}
	}
	return nil, 0, ErrNotFound
}

// Scan calls fn with every frame written at or after since, newest first,
// until fn returns false. Older versions of a key are included. It holds
// appends' visibility back while it reads (use it at start).
func (l *Log) Scan(since time.Time, fn func(key string, value []byte, at time.Time) bool) error {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	segs := append(slices.Clone(l.sealed), l.active)
	for i := len(segs) - 1; i >= 0; i-- {
		s := segs[i]
		if s.count > 0 && s.last.Before(since) {
			return nil
		}
		var offs []int64 // the frames' offsets, read again newest first
		if _, err := scanFrames(s.f, func(fr frame) {
			if fr.off < s.size && !fr.at.Before(since) {
				offs = append(offs, fr.off)
			}
		}); err != nil {
			return fmt.Errorf("recordlog: reading %s: %w", s.f.Name(), err)
		}
		for j := len(offs) - 1; j >= 0; j-- {
			fr, err := readFrame(s.f, offs[j])
			if err != nil {
				return err
			}
			if !fn(fr.key, fr.value, fr.at) {
				return nil
			}
		}
	}
	return nil
}

// Maintain seals an active segment that has grown old and deletes the
// expired segments; Append does it too, so call it while no appends come.
func (l *Log) Maintain() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if l.isClosed() {
		return ErrClosed
	}
	return l.maintain(l.opts.Now())
}

// Stats is what a Log holds.
type Stats struct {
	// Segments on disk (the active one included) and the frames and bytes
	// they hold.
	Segments int
	Frames   int
	Bytes    int64
	// ActiveKeys: keys of the active segment, held in memory.
	ActiveKeys int
	// Fence: index entries of the sealed segments held in memory (one per
	// 256 keys of each).
	Fence int
}

// Stats reports what the log holds.
func (l *Log) Stats() Stats {
	l.mu.RLock()
	defer l.mu.RUnlock()
	st := Stats{Segments: len(l.sealed) + 1, ActiveKeys: len(l.keys) + len(l.collided)}
	for _, s := range append(slices.Clone(l.sealed), l.active) {
		st.Frames += s.count
		st.Bytes += s.size
		st.Fence += len(s.fence)
	}
	return st
}

// Close closes the log's files.
func (l *Log) Close() error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	return l.closeFiles()
}

func (l *Log) closeFiles() error {
	var errs []error
	for _, s := range append(slices.Clone(l.sealed), l.active) {
		if s == nil {
			continue
		}
		errs = append(errs, s.f.Close())
		if s.idx != nil {
			errs = append(errs, s.idx.Close())
		}
	}
	return errors.Join(errs...)
}
