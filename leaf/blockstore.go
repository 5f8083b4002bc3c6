package leaf

import (
	"sync/atomic"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/leaf/wal"
)

// blockStore keeps the leaf's sealed blocks. The heap store keeps each block as
// built, in the Go heap. The shared-memory store (shmstore.go) writes each block to
// a file in the leaf's shm directory and serves the read-only mapping instead, so
// that the blocks outlive the process across a handoff; the table code does not
// care which.
type blockStore interface {
	// Keep takes a freshly sealed block, and the WAL lines its rows came from, and
	// returns the block to serve in its place: b itself, or a copy (e.g. mapped
	// from a file). When the copy differs from b the caller still owns b and
	// releases it once no query holds it. Keep owns cov from then on.
	Keep(b *block.Block, cov wal.Coverage) (*block.Block, error)
	// Drop frees a kept block's memory and storage. It is called exactly once per
	// kept block, after the last query holding it finished.
	Drop(b *block.Block)
}

// heapStore keeps sealed blocks in the Go heap.
type heapStore struct{}

func (heapStore) Keep(b *block.Block, _ wal.Coverage) (*block.Block, error) { return b, nil }
func (heapStore) Drop(b *block.Block)                                       { b.Release() }

// blockRef counts the holders of a block: the table (while the block is its open
// block or in its sealed list) and every query that took it in a snapshot. The last
// release frees the block — through the blockStore if the store kept it — and
// returns its bytes to the leaf's memory account.
type blockRef struct {
	blk  *block.Block
	refs atomic.Int32
	kept atomic.Bool // the blockStore kept blk: free it with Drop
	st   *store
	// check, when set, must pass before a query reads blk (a block attached at a
	// handoff start; see blockCheck). Set before the reference is shared.
	check *blockCheck
}

// newRef returns a reference to b held once (by the caller) and charges b's bytes
// to the memory account.
func (st *store) newRef(b *block.Block, kept bool) *blockRef {
	r := &blockRef{blk: b, st: st}
	r.refs.Store(1)
	r.kept.Store(kept)
	st.mem.Add(b.Bytes)
	return r
}

func (r *blockRef) acquire() { r.refs.Add(1) }

func (r *blockRef) release() {
	switch n := r.refs.Add(-1); {
	case n == 0:
		if r.check != nil {
			r.check.freed()
		}
		r.st.mem.Add(-r.blk.Bytes)
		if r.kept.Load() {
			r.st.blocks.Drop(r.blk)
		} else {
			r.blk.Release()
		}
	case n < 0:
		panic("BUG: leaf block released more often than acquired")
	}
}

// snapshot is the set of blocks one query scans. It holds a reference to each
// until release.
type snapshot struct {
	refs   []*blockRef
	blocks []*block.Block
}

func (s *snapshot) add(r *blockRef) {
	r.acquire()
	s.refs = append(s.refs, r)
	s.blocks = append(s.blocks, r.blk)
}

// release lets go of every block; the snapshot must not be used afterwards.
func (s *snapshot) release() {
	for _, r := range s.refs {
		r.release()
	}
	s.refs, s.blocks = nil, nil
}

// warmDictionaries makes Arrow create every dictionary array's values array now.
// (*array.Dictionary).Dictionary creates it on first use, which is a data race when
// two queries read a fresh block at once; after this call reading a block writes
// nothing.
func warmDictionaries(b *block.Block) {
	for i := range b.Columns {
		warmArray(b.Columns[i].Arr)
	}
}

func warmArray(a arrow.Array) {
	switch a := a.(type) {
	case *array.Dictionary:
		a.Dictionary()
	case *array.List:
		warmArray(a.ListValues())
	}
}
