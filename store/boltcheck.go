package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
)

// The bbolt file format (version 2), as far as verifyBoltFile reads it.
// Integers are in the machine's byte order, as bbolt writes them.
const (
	boltMagic          = 0xED0CDAED
	boltVersion        = 2
	pageHeaderSize     = 16 // id u64, flags u16, count u16, overflow u32
	elementSize        = 16 // branch: pos, ksize u32, pgid u64; leaf: flags, pos, ksize, vsize u32
	bucketHeaderSize   = 16 // root pgid u64, sequence u64
	metaSize           = 64 // magic, version, pageSize, flags u32; root bucket; freelist, pgid, txid, checksum u64
	branchPageFlag     = 0x01
	leafPageFlag       = 0x02
	freelistPageFlag   = 0x10
	bucketLeafFlag     = 0x01
	noFreelist         = ^uint64(0)
	maxTreeDepth       = 64
	maxPageBytes       = 1 << 30 // one page with its overflow; larger is damage, not data
	minBoltPageSize    = 512
	maxBoltPageSize    = 1 << 20
	freelistCountInIDs = 0xFFFF
)

var ne = binary.NativeEndian

// verifyBoltFile checks the structure of the bbolt file f by reading it
// (never through a memory map): a valid meta page, every page reachable
// from the root within the file and of the right type, every element
// inside its page, no page referenced twice, a freelist of pages that
// exist and are not in use. bbolt itself trusts all of this and panics or
// faults (an unrecoverable crash, for an mmap'd page outside the file) on
// a file that breaks it, so it is checked before bbolt opens the file. A
// nil error means bbolt can read every page without leaving the file.
func verifyBoltFile(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	size := fi.Size()
	if size == 0 {
		return nil // new file: bbolt initialises it
	}
	v := &boltVerifier{f: f, size: size, seen: map[uint64]bool{}}
	return v.verify()
}

type boltVerifier struct {
	f        *os.File
	size     int64
	pageSize uint64
	hwm      uint64 // pages in use: ids below it
	seen     map[uint64]bool
	freed    map[uint64]bool
}

type boltMeta struct {
	pageSize, freelist, pgid, txid, root uint64
}

// meta reads and validates the meta page at byte offset off.
func (v *boltVerifier) meta(off int64) (*boltMeta, error) {
	b := make([]byte, pageHeaderSize+metaSize)
	if _, err := v.f.ReadAt(b, off); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, errors.New("file too short for a bbolt database")
		}
		return nil, err
	}
	m := b[pageHeaderSize:]
	if ne.Uint32(m[0:]) != boltMagic {
		return nil, errors.New("not a bbolt database (bad magic number)")
	}
	if ne.Uint32(m[4:]) != boltVersion {
		return nil, fmt.Errorf("unsupported bbolt version %d", ne.Uint32(m[4:]))
	}
	h := fnv.New64a()
	h.Write(m[:56])
	if h.Sum64() != ne.Uint64(m[56:]) {
		return nil, errors.New("meta page checksum mismatch")
	}
	return &boltMeta{
		pageSize: uint64(ne.Uint32(m[8:])),
		root:     ne.Uint64(m[16:]),
		freelist: ne.Uint64(m[32:]),
		pgid:     ne.Uint64(m[40:]),
		txid:     ne.Uint64(m[48:]),
	}, nil
}

func (v *boltVerifier) verify() error {
	m0, err0 := v.meta(0)
	var m1 *boltMeta
	var err1 error
	if m0 != nil {
		m1, err1 = v.meta(int64(m0.pageSize))
	} else {
		err1 = err0
		for _, ps := range []int64{4096, int64(os.Getpagesize()), 8192, 16384, 65536} {
			if m1, err1 = v.meta(ps); m1 != nil {
				break
			}
		}
	}
	// bbolt uses the valid meta page of the latest transaction
	m := m0
	if m == nil || (m1 != nil && m1.txid > m0.txid) {
		m = m1
	}
	if m == nil {
		return fmt.Errorf("meta pages: %v; %v", err0, err1)
	}
	if m.pageSize < minBoltPageSize || m.pageSize > maxBoltPageSize || m.pageSize&(m.pageSize-1) != 0 {
		return fmt.Errorf("meta page: bad page size %d", m.pageSize)
	}
	v.pageSize, v.hwm = m.pageSize, m.pgid
	if v.hwm < 2 || v.hwm > uint64(v.size)/v.pageSize {
		return fmt.Errorf("meta page: %d pages in use, but the file holds %d", v.hwm, uint64(v.size)/v.pageSize)
	}
	if err := v.readFreelist(m.freelist); err != nil {
		return err
	}
	if m.root == 0 {
		return errors.New("meta page: no root bucket")
	}
	return v.tree(m.root, 0)
}

// page reads page id with its overflow pages, checking it lies in the
// used part of the file.
func (v *boltVerifier) page(id uint64) ([]byte, error) {
	if id < 2 || id >= v.hwm {
		return nil, fmt.Errorf("page %d: out of bounds (the file uses pages 2 to %d)", id, v.hwm-1)
	}
	head := make([]byte, pageHeaderSize)
	if _, err := v.f.ReadAt(head, int64(id*v.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	if got := ne.Uint64(head); got != id {
		return nil, fmt.Errorf("page %d: header names page %d", id, got)
	}
	overflow := uint64(ne.Uint32(head[12:]))
	if id+overflow >= v.hwm || (overflow+1)*v.pageSize > maxPageBytes {
		return nil, fmt.Errorf("page %d: %d overflow pages run past the end", id, overflow)
	}
	b := make([]byte, (overflow+1)*v.pageSize)
	if _, err := v.f.ReadAt(b, int64(id*v.pageSize)); err != nil {
		return nil, fmt.Errorf("page %d: %w", id, err)
	}
	return b, nil
}

func (v *boltVerifier) readFreelist(id uint64) error {
	v.freed = map[uint64]bool{}
	if id == noFreelist {
		return nil
	}
	b, err := v.page(id)
	if err != nil {
		return fmt.Errorf("freelist: %w", err)
	}
	if ne.Uint16(b[8:]) != freelistPageFlag {
		return fmt.Errorf("freelist: page %d has type %#x, not freelist", id, ne.Uint16(b[8:]))
	}
	if err := v.use(id, b); err != nil {
		return err
	}
	n, at := uint64(ne.Uint16(b[10:])), uint64(pageHeaderSize)
	if n == freelistCountInIDs {
		if len(b) < pageHeaderSize+8 {
			return fmt.Errorf("freelist: page %d too short", id)
		}
		n, at = ne.Uint64(b[pageHeaderSize:]), at+8
	}
	if n > (uint64(len(b))-at)/8 {
		return fmt.Errorf("freelist: page %d claims %d free pages, more than it holds", id, n)
	}
	for i := range n {
		free := ne.Uint64(b[at+8*i:])
		if free < 2 || free >= v.hwm {
			return fmt.Errorf("freelist: free page %d out of bounds", free)
		}
		if v.freed[free] {
			return fmt.Errorf("freelist: page %d freed twice", free)
		}
		v.freed[free] = true
	}
	if v.freed[id] {
		return fmt.Errorf("freelist: page %d lists itself as free", id)
	}
	return nil
}

// use marks page id (and its overflow) as reachable.
func (v *boltVerifier) use(id uint64, b []byte) error {
	for i := range uint64(len(b)) / v.pageSize {
		if v.seen[id+i] {
			return fmt.Errorf("page %d: referenced twice", id+i)
		}
		if v.freed[id+i] {
			return fmt.Errorf("page %d: in use and also free", id+i)
		}
		v.seen[id+i] = true
	}
	return nil
}

// tree checks the B+tree rooted at page id: branch pages lead to pages of
// the tree, leaf pages hold keys, values and (nested) buckets.
func (v *boltVerifier) tree(id uint64, depth int) error {
	if depth > maxTreeDepth {
		return fmt.Errorf("page %d: tree deeper than %d", id, maxTreeDepth)
	}
	b, err := v.page(id)
	if err != nil {
		return err
	}
	if err := v.use(id, b); err != nil {
		return err
	}
	return v.node(id, b, depth)
}

// node checks one branch or leaf page held in b (a page of the file or an
// inline bucket's page).
func (v *boltVerifier) node(id uint64, b []byte, depth int) error {
	if len(b) < pageHeaderSize {
		return fmt.Errorf("page %d: too short", id)
	}
	flags, count := ne.Uint16(b[8:]), int(ne.Uint16(b[10:]))
	if pageHeaderSize+count*elementSize > len(b) {
		return fmt.Errorf("page %d: %d elements do not fit in the page", id, count)
	}
	switch flags {
	case branchPageFlag:
		if count == 0 {
			return fmt.Errorf("page %d: empty branch page", id)
		}
		for i := range count {
			e := pageHeaderSize + i*elementSize
			if _, err := span(b, e, ne.Uint32(b[e:]), ne.Uint32(b[e+4:])); err != nil {
				return fmt.Errorf("page %d: element %d: key %v", id, i, err)
			}
			if err := v.tree(ne.Uint64(b[e+8:]), depth+1); err != nil {
				return err
			}
		}
	case leafPageFlag:
		for i := range count {
			e := pageHeaderSize + i*elementSize
			kEnd, err := span(b, e, ne.Uint32(b[e+4:]), ne.Uint32(b[e+8:]))
			if err != nil {
				return fmt.Errorf("page %d: element %d: key %v", id, i, err)
			}
			vsize := ne.Uint32(b[e+12:])
			if uint64(kEnd)+uint64(vsize) > uint64(len(b)) {
				return fmt.Errorf("page %d: element %d: value runs past the page", id, i)
			}
			if ne.Uint32(b[e:])&bucketLeafFlag == 0 {
				continue
			}
			val := b[kEnd : kEnd+int(vsize)]
			if len(val) < bucketHeaderSize {
				return fmt.Errorf("page %d: element %d: bucket header too short", id, i)
			}
			if root := ne.Uint64(val); root != 0 {
				if err := v.tree(root, depth+1); err != nil {
					return err
				}
				continue
			}
			// an inline bucket: its leaf page follows the header
			inline := val[bucketHeaderSize:]
			if len(inline) < pageHeaderSize || ne.Uint16(inline[8:]) != leafPageFlag {
				return fmt.Errorf("page %d: element %d: bad inline bucket", id, i)
			}
			if err := v.node(id, inline, depth+1); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("page %d: unexpected page type %#x", id, flags)
	}
	return nil
}

// span checks that n bytes at offset pos from the element at e lie in b
// and returns where they end.
func span(b []byte, e int, pos, n uint32) (int, error) {
	start := uint64(e) + uint64(pos)
	end := start + uint64(n)
	if end > uint64(len(b)) {
		return 0, errors.New("runs past the page")
	}
	return int(end), nil
}
