package exec

import (
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/plan"
)

// groups is a worker's group table. Group ids start at 1; id 0 is the trash group
// that rows of groups dropped at the MaxGroups bound fall into (its accumulators are
// never reported), so kernels need no branch for it.
type groups struct {
	index     map[string]uint32 // encoded key (agg.AppendGroupKey) → gid
	strs      map[string]uint32 // single string key → gid: no key encoding
	keys      [][]plan.Value    // keys[gid]; keys[0] is the trash group's
	max       int
	truncated bool
	buf       []byte
	mem       arena

	// With several workers: the query's admission, and a lock held while adding a
	// group without asking it (see admission).
	shared *admission
	mu     sync.Mutex
}

func newGroups(maxGroups int, shared *admission) *groups {
	g := &groups{index: make(map[string]uint32), keys: [][]plan.Value{nil}, max: maxGroups, shared: shared}
	if shared != nil {
		shared.workers = append(shared.workers, g)
	}
	return g
}

// n is the number of gids in use, the trash group included.
func (g *groups) n() int { return len(g.keys) }

// lookup returns the gid of key, adding the group if it is new and the bound allows
// (strings are cloned: key may point into a block). added reports a new group.
func (g *groups) lookup(key []plan.Value) (gid uint32, added bool) {
	// A key of one string, the most common, is looked up as itself; every other key
	// by its encoding. Each key has one form, so the two maps never disagree.
	single := len(key) == 1 && key[0].Kind == plan.KindString
	var probe string // valid until g.buf changes
	if single {
		probe = key[0].S
		if id, ok := g.strs[probe]; ok {
			return id, false
		}
	} else {
		g.buf = agg.AppendGroupKey(g.buf[:0], key)
		probe = unsafe.String(unsafe.SliceData(g.buf), len(g.buf))
		if id, ok := g.index[probe]; ok {
			return id, false
		}
	}
	if len(g.keys)-1 >= g.max {
		g.truncated = true
		return 0, false
	}
	a := g.shared
	if a == nil {
		id, _ := g.add(key, single)
		return id, true
	}
	if len(g.keys)-1 < a.budget && !a.slow.Load() {
		g.mu.Lock()
		if !a.slow.Load() {
			id, _ := g.add(key, single)
			g.mu.Unlock()
			return id, true
		}
		g.mu.Unlock()
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.admit(probe, single) {
		g.truncated = true
		return 0, false
	}
	id, stored := g.add(key, single)
	a.record(stored, single)
	return id, true
}

// add adds a group for key (g.buf holding its encoding unless single) and returns
// its gid and the map key it is stored under.
func (g *groups) add(key []plan.Value, single bool) (uint32, string) {
	k := g.mem.values(len(key))
	for i, v := range key {
		if v.Kind == plan.KindString {
			v.S = g.mem.str(v.S)
		}
		k[i] = v
	}
	id := uint32(len(g.keys))
	g.keys = append(g.keys, k)
	if single {
		if g.strs == nil {
			g.strs = make(map[string]uint32)
		}
		g.strs[k[0].S] = id
		return id, k[0].S
	}
	stored := g.mem.bytesStr(g.buf)
	g.index[stored] = id
	return id, stored
}

// admission makes the workers of one query agree on which groups exist once the
// MaxGroups bound is near, so that every worker drops the rows of the same groups
// and each group kept is complete.
//
// Each worker may add up to budget = MaxGroups/workers groups on its own, under
// its own lock (uncontended). The first worker past its budget turns the query
// slow: under the admission's lock it collects every worker's keys (taking each
// worker's lock, so no addition is missed), and from then on a group is added
// only through the admission: if it exists in some worker, or there is room.
// The key sets hold at most MaxGroups keys, interned by the workers.
type admission struct {
	budget  int
	max     int
	slow    atomic.Bool
	workers []*groups // set before the workers start

	mu    sync.Mutex
	index map[string]struct{} // encoded keys, once slow
	strs  map[string]struct{} // single string keys, once slow
}

func newAdmission(maxGroups, workers int) *admission {
	return &admission{max: maxGroups, budget: maxGroups / workers}
}

// admit reports whether a group of key may be added, turning the query slow
// first if needed. Call with mu held.
func (a *admission) admit(key string, single bool) bool {
	if !a.slow.Load() {
		a.slow.Store(true) // workers now come here for every new group
		a.index, a.strs = make(map[string]struct{}), make(map[string]struct{})
		for _, w := range a.workers {
			w.mu.Lock()
			for k := range w.index {
				a.index[k] = struct{}{}
			}
			for k := range w.strs {
				a.strs[k] = struct{}{}
			}
			w.mu.Unlock()
		}
	}
	m := a.index
	if single {
		m = a.strs
	}
	if _, ok := m[key]; ok {
		return true
	}
	return len(a.index)+len(a.strs) < a.max
}

// record notes the key of a group just added (a string that stays valid). Call
// with mu held.
func (a *admission) record(key string, single bool) {
	if single {
		a.strs[key] = struct{}{}
	} else {
		a.index[key] = struct{}{}
	}
}

// keyCol is one GROUP BY key over the current block: a local id per selected row
// (dense in [0, card)) and the way back from an id to the key value.
type keyCol struct {
	kind   keyKind
	card   uint64
	nullID uint32
	ids    []uint32

	dict          *array.String // kDict
	base          int64         // kRaw: value = id + base
	first, bucket int64         // kBucket: value = first + id*bucket
	vals          []plan.Value  // kMapped

	bad bool // value met a dictionary code beyond the dictionary

	table  []uint32 // kBucket over narrow ints: raw value → id
	intIDs map[int64]uint32
	fltIDs map[uint64]uint32
	strIDs map[string]uint32
}

type keyKind uint8

const (
	kNull keyKind = iota
	kDict
	kRaw
	kBucket
	kMapped
)

// maxDenseCard bounds the id range of a key (or a combination of keys) resolved
// through a dense table; larger ranges go through a hash map.
const maxDenseCard = 1 << 20

// value is the key value of local id. A dictionary code beyond the dictionary
// (a corrupt block) reads as NULL and sets bad.
func (k *keyCol) value(id uint32) plan.Value {
	if id == k.nullID {
		return plan.Null()
	}
	switch k.kind {
	case kDict:
		if int(id) >= k.dict.Len() {
			k.bad = true
			return plan.Null()
		}
		return plan.String(k.dict.Value(int(id)))
	case kRaw:
		return plan.Int(int64(id) + k.base)
	case kBucket:
		return plan.Int(k.first + int64(id)*k.bucket)
	case kMapped:
		return k.vals[id]
	}
	return plan.Null()
}

// compute fills k for key gk over the selected rows of the current block.
func (k *keyCol) compute(gk plan.GroupKey, v *colView, rows []uint32) error {
	k.ids = growU32(k.ids, len(rows))
	k.vals = k.vals[:0]
	k.kind, k.nullID = kNull, 0
	if v.allNull() {
		k.card = 1
		clear(k.ids)
		return nil
	}
	if gk.Bucket > 0 && v.kind != viewInt && v.kind != viewFloat {
		return fmt.Errorf("cannot bucket non-numeric column %q", gk.Column)
	}
	switch v.kind {
	case viewDict:
		nd := v.dictLen()
		k.kind, k.dict, k.nullID, k.card = kDict, v.dict, uint32(nd), uint64(nd)+1
		switch {
		case v.c8 != nil:
			gatherIDs(v.c8, rows, k.ids)
		case v.c16 != nil:
			gatherIDs(v.c16, rows, k.ids)
		default:
			gatherIDs(v.c32, rows, k.ids)
		}
	case viewPlain:
		k.mapStrings(v, rows)
	case viewInt:
		if gk.Bucket > 0 {
			k.bucketInts(v, gk.Bucket, rows)
		} else if span, ok := rawSpan(v); ok {
			k.kind, k.base, k.nullID, k.card = kRaw, v.base, uint32(span+1), uint64(span)+2
			switch {
			case v.u8 != nil:
				gatherIDs(v.u8, rows, k.ids)
			case v.u16 != nil:
				gatherIDs(v.u16, rows, k.ids)
			default:
				gatherIDs(v.u32, rows, k.ids)
			}
		} else {
			k.mapInts(v, rows, 0)
		}
	case viewFloat:
		k.mapFloats(v, rows, gk.Bucket)
	case viewSet:
		return fmt.Errorf("cannot GROUP BY set column %q", gk.Column)
	}
	if v.valid != nil && k.kind != kMapped {
		valid := v.valid
		for j, i := range rows {
			if valid[i] == 0 {
				k.ids[j] = k.nullID
			}
		}
	}
	return nil
}

// rawSpan returns the largest raw value of a narrow int column (from its
// statistics, else its type), when ids can be the raw values themselves.
func rawSpan(v *colView) (int64, bool) {
	var typeMax int64
	switch {
	case v.u8 != nil:
		typeMax = math.MaxUint8
	case v.u16 != nil:
		typeMax = math.MaxUint16
	case v.u32 != nil:
		typeMax = math.MaxUint32
	default:
		return 0, false
	}
	if st := v.col.Stats; st.HasMinMax && st.MinI >= v.base {
		if span := satSub(st.MaxI, v.base); span < typeMax {
			return span, true
		}
	}
	return typeMax, typeMax < maxDenseCard
}

func gatherIDs[T uint8 | uint16 | uint32](codes []T, rows []uint32, ids []uint32) {
	ids = ids[:len(rows)]
	for j, i := range rows {
		ids[j] = uint32(codes[i])
	}
}

func growU32(s []uint32, n int) []uint32 {
	if cap(s) < n {
		return make([]uint32, n, max(n, block64k))
	}
	return s[:n]
}

const block64k = 1 << 16

func (k *keyCol) mapStrings(v *colView, rows []uint32) {
	k.kind = kMapped
	if k.strIDs == nil {
		k.strIDs = make(map[string]uint32)
	}
	clear(k.strIDs)
	k.vals = append(k.vals, plan.Null())
	for j, i := range rows {
		if v.valid != nil && v.valid[i] == 0 {
			k.ids[j] = 0
			continue
		}
		s := v.plain.Value(int(i))
		id, ok := k.strIDs[s]
		if !ok {
			id = uint32(len(k.vals))
			k.strIDs[s] = id
			k.vals = append(k.vals, plan.String(s))
		}
		k.ids[j] = id
	}
	k.card = uint64(len(k.vals))
}

// mapInts assigns ids to the distinct values (or bucket starts) of a wide int
// column through a hash map.
func (k *keyCol) mapInts(v *colView, rows []uint32, bucket int64) {
	k.kind = kMapped
	if k.intIDs == nil {
		k.intIDs = make(map[int64]uint32)
	}
	clear(k.intIDs)
	k.vals = append(k.vals, plan.Null())
	for j, i := range rows {
		if v.valid != nil && v.valid[i] == 0 {
			k.ids[j] = 0
			continue
		}
		x := intAt(v, int(i))
		if bucket > 0 {
			x = floorDiv(x, bucket) * bucket
		}
		id, ok := k.intIDs[x]
		if !ok {
			id = uint32(len(k.vals))
			k.intIDs[x] = id
			k.vals = append(k.vals, plan.Int(x))
		}
		k.ids[j] = id
	}
	k.card = uint64(len(k.vals))
}

func (k *keyCol) mapFloats(v *colView, rows []uint32, bucket int64) {
	k.kind = kMapped
	if k.fltIDs == nil {
		k.fltIDs = make(map[uint64]uint32)
	}
	clear(k.fltIDs)
	k.vals = append(k.vals, plan.Null())
	for j, i := range rows {
		if v.valid != nil && v.valid[i] == 0 {
			k.ids[j] = 0
			continue
		}
		x := v.f64[i]
		if bucket > 0 {
			x = math.Floor(x/float64(bucket)) * float64(bucket)
		}
		bits := math.Float64bits(x)
		switch {
		case x == 0:
			bits = 0 // -0 is 0
		case x != x:
			bits = 0x7ff8000000000001
		}
		id, ok := k.fltIDs[bits]
		if !ok {
			id = uint32(len(k.vals))
			k.fltIDs[bits] = id
			k.vals = append(k.vals, plan.Float(x))
		}
		k.ids[j] = id
	}
	k.card = uint64(len(k.vals))
}

// bucketInts maps an int column to time-bucket ids: floor(v/bucket)*bucket, floored
// for negative values too. Narrow columns use a table from raw value to id built
// incrementally (no division per row).
func (k *keyCol) bucketInts(v *colView, bucket int64, rows []uint32) {
	span, ok := rawSpan(v)
	if !ok || span >= maxDenseCard || v.u32 != nil {
		k.mapInts(v, rows, bucket)
		return
	}
	first := floorDiv(v.base, bucket) * bucket
	off := v.base - first // in [0, bucket)
	nb := (off+span)/bucket + 1
	k.kind, k.first, k.bucket = kBucket, first, bucket
	k.nullID, k.card = uint32(nb), uint64(nb)+1
	if cap(k.table) < int(span)+1 {
		k.table = make([]uint32, span+1)
	}
	t := k.table[:span+1]
	id, rem := uint32(0), off
	for r := range t {
		t[r] = id
		if rem++; rem == bucket {
			rem = 0
			id++
		}
	}
	if v.u8 != nil {
		for j, i := range rows {
			k.ids[j] = t[v.u8[i]]
		}
	} else {
		for j, i := range rows {
			k.ids[j] = t[v.u16[i]]
		}
	}
	// compute marks the NULL rows.
}

// intAt is the value of row i of an int view.
func intAt(v *colView, i int) int64 {
	switch {
	case v.u8 != nil:
		return int64(v.u8[i]) + v.base
	case v.u16 != nil:
		return int64(v.u16[i]) + v.base
	case v.u32 != nil:
		return int64(v.u32[i]) + v.base
	}
	return v.i64[i] + v.base
}

// floorDiv is floor(a/b) for b > 0, also for negative a.
func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && (a < 0) {
		q--
	}
	return q
}

// grouper turns the selected rows of a block into gids.
type grouper struct {
	keys  []keyCol
	comp  []uint32          // combined ids when there are several keys
	lut   []uint32          // combined id → gid+1 (0: not resolved yet)
	dirty []uint32          // lut entries set in this block, to clear
	wide  map[uint64]uint32 // combined id → gid+1 when the id range is too large
	gids  []uint32
	key   []plan.Value
}

// assign returns the gid of each selected row. New groups are added to gs; onNew is
// called for each so that accumulators can grow.
//
// rows nil means every row; ident must then hold 0, 1, 2, … for every row.
func (gr *grouper) assign(gb []plan.GroupKey, vs *views, rows, ident []uint32, gs *groups, onNew func()) ([]uint32, error) {
	if len(gr.keys) < len(gb) {
		gr.keys = make([]keyCol, len(gb))
		gr.key = make([]plan.Value, len(gb))
	}
	gids, err := gr.assignKeys(gb, vs, rows, ident, gs, onNew)
	if err == nil {
		err = gr.checkKeys(gb)
	}
	return gids, err
}

// checkKeys reports a corrupt dictionary code met while resolving groups.
func (gr *grouper) checkKeys(gb []plan.GroupKey) error {
	for j := range gb {
		if k := &gr.keys[j]; k.bad {
			k.bad = false
			return fmt.Errorf("column %q: dictionary code beyond its %d entries", gb[j].Column, k.dict.Len())
		}
	}
	return nil
}

func (gr *grouper) assignKeys(gb []plan.GroupKey, vs *views, rows, ident []uint32, gs *groups, onNew func()) ([]uint32, error) {
	if gids, ok, err := gr.assignSingle(gb, vs, rows, gs, onNew); ok || err != nil {
		return gids, err
	}
	if rows == nil {
		rows = ident
	}
	card := uint64(1)
	for j, gk := range gb {
		v, err := vs.get(gk.Column)
		if err != nil {
			return nil, err
		}
		if err := gr.keys[j].compute(gk, v, rows); err != nil {
			return nil, err
		}
		c := gr.keys[j].card
		if card > math.MaxUint64/c {
			card = math.MaxUint64
		} else {
			card *= c
		}
	}
	ids := gr.keys[0].ids
	if len(gb) > 1 {
		gr.comp = growU32(gr.comp, len(rows))
		ids = gr.comp
		if card > math.MaxUint32 {
			return gr.assignWide(gb, rows, gs, onNew), nil
		}
		copy(ids, gr.keys[0].ids)
		stride := uint32(gr.keys[0].card)
		for j := 1; j < len(gb); j++ {
			for r, id := range gr.keys[j].ids {
				ids[r] += id * stride
			}
			stride *= uint32(gr.keys[j].card)
		}
	}
	if card > maxDenseCard {
		return gr.assignMap(gb, ids, gs, onNew), nil
	}
	if uint64(len(gr.lut)) < card {
		gr.lut = make([]uint32, card)
	}
	lut := gr.lut[:card]
	gr.gids = growU32(gr.gids, len(rows))
	gids := gr.gids
	for r, c := range ids {
		g := lut[c]
		if g == 0 {
			g = gr.resolve(gb, uint64(c), gs, onNew) + 1
			lut[c] = g
			gr.dirty = append(gr.dirty, c)
		}
		gids[r] = g - 1
	}
	for _, c := range gr.dirty {
		lut[c] = 0
	}
	gr.dirty = gr.dirty[:0]
	return gids, nil
}

// assignSingle is the fast path for one key over a dictionary string or a narrow
// int column without NULLs: the code (or raw value) indexes the block's table of
// gids directly, in one pass. rows nil means every row. ok is false when the key
// does not qualify.
func (gr *grouper) assignSingle(gb []plan.GroupKey, vs *views, rows []uint32, gs *groups, onNew func()) (gids []uint32, ok bool, err error) {
	if len(gb) != 1 || gb[0].Bucket != 0 {
		return nil, false, nil
	}
	v, err := vs.get(gb[0].Column)
	if err != nil || v.valid != nil || v.nulls > 0 {
		return nil, false, err
	}
	k := &gr.keys[0]
	k.vals = k.vals[:0]
	var size uint64
	switch {
	case v.kind == viewDict && v.c8 != nil:
		size = 1 << 8
	case v.kind == viewDict && v.c16 != nil:
		size = 1 << 16
	case v.kind == viewInt && v.u8 != nil:
		size = 1 << 8
	case v.kind == viewInt && v.u16 != nil:
		size = 1 << 16
	default:
		return nil, false, nil
	}
	if v.kind == viewDict {
		// No NULLs: every code must name an entry (nullID matches no code).
		k.kind, k.dict = kDict, v.dict
		k.nullID, k.card = math.MaxUint32, size
	} else {
		k.kind, k.base = kRaw, v.base
		k.nullID, k.card = uint32(size), size+1
	}
	if len(gr.lut) < 1<<16 {
		gr.lut = make([]uint32, 1<<16)
	}
	n := len(rows)
	if rows == nil {
		n = v.n
	}
	gr.gids = growU32(gr.gids, n)
	lut := (*[1 << 16]uint32)(gr.lut)
	switch {
	case v.c8 != nil:
		fusedGids(gr, lut, v.c8, rows, gb, gs, onNew)
	case v.u8 != nil:
		fusedGids(gr, lut, v.u8, rows, gb, gs, onNew)
	case v.c16 != nil:
		fusedGids(gr, lut, v.c16, rows, gb, gs, onNew)
	default:
		fusedGids(gr, lut, v.u16, rows, gb, gs, onNew)
	}
	for _, c := range gr.dirty {
		gr.lut[c] = 0
	}
	gr.dirty = gr.dirty[:0]
	return gr.gids, true, nil
}

// fusedGids sets gr.gids from codes through lut (code → gid+1, 0: not resolved
// yet), which covers every 16-bit code, so there are no bounds checks.
func fusedGids[T uint8 | uint16](gr *grouper, lut *[1 << 16]uint32, codes []T, rows []uint32, gb []plan.GroupKey, gs *groups, onNew func()) {
	gids := gr.gids
	if rows == nil {
		gids = gids[:len(codes)]
		for i, c := range codes {
			g := lut[uint16(c)]
			if g == 0 {
				g = gr.resolve(gb, uint64(c), gs, onNew) + 1
				lut[uint16(c)] = g
				gr.dirty = append(gr.dirty, uint32(c))
			}
			gids[i] = g - 1
		}
		return
	}
	gids = gids[:len(rows)]
	for k, i := range rows {
		c := codes[i]
		g := lut[uint16(c)]
		if g == 0 {
			g = gr.resolve(gb, uint64(c), gs, onNew) + 1
			lut[uint16(c)] = g
			gr.dirty = append(gr.dirty, uint32(c))
		}
		gids[k] = g - 1
	}
}

func (gr *grouper) assignMap(gb []plan.GroupKey, ids []uint32, gs *groups, onNew func()) []uint32 {
	if gr.wide == nil {
		gr.wide = make(map[uint64]uint32)
	}
	clear(gr.wide)
	gr.gids = growU32(gr.gids, len(ids))
	for r, c := range ids {
		g, ok := gr.wide[uint64(c)]
		if !ok {
			g = gr.resolve(gb, uint64(c), gs, onNew)
			gr.wide[uint64(c)] = g
		}
		gr.gids[r] = g
	}
	return gr.gids
}

// assignWide handles key combinations whose id range does not fit 32 bits.
func (gr *grouper) assignWide(gb []plan.GroupKey, rows []uint32, gs *groups, onNew func()) []uint32 {
	if gr.wide == nil {
		gr.wide = make(map[uint64]uint32)
	}
	clear(gr.wide)
	gr.gids = growU32(gr.gids, len(rows))
	for r := range rows {
		var c, stride uint64 = 0, 1
		for j := range gb {
			c += uint64(gr.keys[j].ids[r]) * stride
			stride *= gr.keys[j].card
		}
		g, ok := gr.wide[c]
		if !ok {
			for j := range gb {
				gr.key[j] = gr.keys[j].value(gr.keys[j].ids[r])
			}
			g = gr.lookup(gb, gs, onNew)
			gr.wide[c] = g
		}
		gr.gids[r] = g
	}
	return gr.gids
}

// resolve finds the gid of combined id c.
func (gr *grouper) resolve(gb []plan.GroupKey, c uint64, gs *groups, onNew func()) uint32 {
	for j := range gb {
		card := gr.keys[j].card
		gr.key[j] = gr.keys[j].value(uint32(c % card))
		c /= card
	}
	return gr.lookup(gb, gs, onNew)
}

func (gr *grouper) lookup(gb []plan.GroupKey, gs *groups, onNew func()) uint32 {
	gid, added := gs.lookup(gr.key[:len(gb)])
	if added {
		onNew()
	}
	return gid
}
