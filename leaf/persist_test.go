package leaf

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/leaf/wal"
	"github.com/reef-db/reef/shm"
)

// persistDirs are the directories of one leaf, kept across its restarts.
type persistDirs struct{ data, shm string }

func newPersistDirs(t *testing.T) persistDirs {
	d := t.TempDir()
	return persistDirs{data: filepath.Join(d, "data"), shm: filepath.Join(d, "shm")}
}

func persistConfig(d persistDirs) Config {
	cfg := testConfig()
	cfg.DataDir, cfg.ShmDir = d.data, d.shm
	cfg.LockWait = time.Second
	return cfg
}

// runningLeaf is a leaf over HTTP that a test stops and starts again.
type runningLeaf struct {
	*testLeaf
	stopped bool
}

func startLeaf(t *testing.T, cfg Config) *runningLeaf {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	l := &runningLeaf{testLeaf: &testLeaf{s: s, srv: srv, c: api.NewClient(srv.URL)}}
	t.Cleanup(l.stop)
	return l
}

// stop ends the leaf like a process exit: no handoff unless one was asked for.
func (l *runningLeaf) stop() {
	if l.stopped {
		return
	}
	l.stopped = true
	l.c.HTTP.CloseIdleConnections()
	l.srv.Close()
	l.s.Close()
}

// handoff asks for a handoff over HTTP and stops the leaf.
func (l *runningLeaf) handoff(t *testing.T) HandoffResult {
	t.Helper()
	r := l.do(t, http.MethodPost, "/v1/admin/handoff", nil)
	if r.status != http.StatusOK {
		t.Fatalf("handoff: %d %s", r.status, r.body)
	}
	var hr HandoffResult
	if err := json.Unmarshal(r.body, &hr); err != nil {
		t.Fatal(err)
	}
	l.stop()
	return hr
}

// rowsOf returns every row of table name, each encoded as JSON, sorted: the
// table's content as a multiset.
func rowsOf(t *testing.T, l *runningLeaf, name string) []string {
	t.Helper()
	var out []string
	for _, m := range tableRows(t, l.s.store, name) {
		b, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, string(b))
	}
	slices.Sort(out)
	return out
}

func sameRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: %d rows, want %d (first differences: %v)", what, len(got), len(want), firstDiff(got, want))
	}
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("row %d: %s vs %s", i, a[i], b[i])
		}
	}
	return "one is a prefix of the other"
}

// batchBody makes n NDJSON rows of batch k; every third row has no time (it gets
// the arrival time).
func batchBody(k, n int) string {
	var sb strings.Builder
	for i := range n {
		if i%3 == 0 {
			fmt.Fprintf(&sb, `{"batch":%d,"i":%d,"svc":"s%d","lat":%d.5}`+"\n", k, i, i%7, i)
		} else {
			fmt.Fprintf(&sb, `{"time":%d,"batch":%d,"i":%d,"svc":"s%d","lat":%d.5}`+"\n", 1_700_000_000+i, k, i, i%7, i)
		}
	}
	return sb.String()
}

// fill ingests batches from..from+n-1 of rows each into table t, with batch ids,
// sealing after every other batch, so that rows end up both in sealed blocks and in
// the open one.
func fill(t *testing.T, l *runningLeaf, from, n, rows int) {
	t.Helper()
	for k := from; k < from+n; k++ {
		res := l.ingest(t, "t", batchBody(k, rows), api.HeaderBatchID, fmt.Sprintf("b-%d", k))
		if res.Accepted != rows {
			t.Fatalf("batch %d: accepted %d of %d", k, res.Accepted, rows)
		}
		if k%2 == 1 {
			l.s.store.sealAll()
		}
	}
}

func waitDiskCopies(t *testing.T, l *runningLeaf) {
	t.Helper()
	waitFor(t, func() bool { return l.s.shm.diskBacklog() == 0 && l.s.shm.pendingMinSeq() == 0 })
}

func TestHandoffRestart(t *testing.T) {
	d := newPersistDirs(t)
	cfg := persistConfig(d)
	l := startLeaf(t, cfg)
	if p := l.s.Stats().Start.Path; p != startEmpty {
		t.Fatalf("first start took path %q", p)
	}
	l.s.shm.holdCopies.Store(true) // the WAL keeps every record (and batch id)
	fill(t, l, 0, 5, 300)
	want := rowsOf(t, l, "t")
	before := l.s.Stats()
	hr := l.handoff(t)
	if hr.Rows != 1500 || hr.Generation != 1 {
		t.Fatalf("handoff answer %+v", hr)
	}
	if _, err := shm.ReadManifest(d.shm); err != nil {
		t.Fatalf("no manifest after the handoff: %v", err)
	}
	// A file the manifest does not list goes once the leaf is up (tidy).
	stray := filepath.Join(d.shm, shm.FileName(0))
	if err := os.WriteFile(stray, []byte("not a block"), 0o600); err != nil {
		t.Fatal(err)
	}

	l = startLeaf(t, cfg)
	st := l.s.Stats()
	if st.Start.Path != startShm || st.Start.Rows != 1500 || st.Start.Blocks != hr.Blocks {
		t.Fatalf("start info %+v, want shm with 1500 rows in %d blocks", st.Start, hr.Blocks)
	}
	if st.Rows != before.Rows || st.Tables["t"].Rows != before.Tables["t"].Rows || st.Bytes == 0 {
		t.Fatalf("stats after restart %+v, before %+v", st, before)
	}
	sameRows(t, "rows after the handoff", rowsOf(t, l, "t"), want)
	if _, err := shm.ReadManifest(d.shm); err == nil {
		t.Fatal("the manifest is still there after the attach")
	}
	// After the start: the stray file goes, and the blocks get their disk copies.
	waitFor(t, func() bool { _, err := os.Stat(stray); return os.IsNotExist(err) })
	waitDiskCopies(t, l)
	// A retried batch is still recognised.
	res := l.ingest(t, "t", batchBody(3, 300), api.HeaderBatchID, "b-3")
	if !res.Duplicate {
		t.Fatalf("retry of b-3 after the handoff stored again: %+v", res)
	}
	// The next handoff goes on from the manifest's generation.
	if hr := l.handoff(t); hr.Generation != 2 {
		t.Fatalf("second handoff wrote generation %d", hr.Generation)
	}
}

// TestCrashRestart stops a leaf without a handoff: the shm blocks are checked and
// attached, the WAL replayed for the open block's rows, every row is there once,
// rows without a time keep their first arrival time, and retried batches are
// recognised.
func TestCrashRestart(t *testing.T) {
	d := newPersistDirs(t)
	cfg := persistConfig(d)
	l := startLeaf(t, cfg)
	// Without disk copies the WAL keeps every record, so every batch id is
	// remembered across the crash (ids are remembered for batches in the WAL).
	l.s.shm.holdCopies.Store(true)
	fill(t, l, 0, 5, 300) // batch 4 is only in the open block
	want := rowsOf(t, l, "t")
	l.stop()

	l = startLeaf(t, cfg)
	if st := l.s.Stats().Start; st.Path != startCrash || st.Rows != 1500 {
		t.Fatalf("start info %+v, want crash with 1500 rows", st)
	}
	sameRows(t, "rows after the crash", rowsOf(t, l, "t"), want)
	for _, id := range []string{"b-0", "b-4"} {
		if res := l.ingest(t, "t", batchBody(0, 300), api.HeaderBatchID, id); !res.Duplicate {
			t.Fatalf("retry of %s after the crash stored again: %+v", id, res)
		}
	}
	sameRows(t, "rows after the retries", rowsOf(t, l, "t"), want)

	// And once more, now that the replayed rows were sealed into new blocks.
	l.s.store.sealAll()
	l.stop()
	l = startLeaf(t, cfg)
	sameRows(t, "rows after a second crash", rowsOf(t, l, "t"), want)
}

// TestDiskRestart: the shm directory is gone (a reboot): disk copies and the WAL.
func TestDiskRestart(t *testing.T) {
	d := newPersistDirs(t)
	cfg := persistConfig(d)
	l := startLeaf(t, cfg)
	fill(t, l, 0, 4, 250)
	waitDiskCopies(t, l)
	fill(t, l, 4, 1, 100) // not sealed: only in the WAL
	want := rowsOf(t, l, "t")
	l.handoff(t)
	if err := os.RemoveAll(d.shm); err != nil {
		t.Fatal(err)
	}
	l = startLeaf(t, cfg)
	if st := l.s.Stats().Start; st.Path != startDisk || st.Rows != int64(len(want)) {
		t.Fatalf("start info %+v, want disk with %d rows", st, len(want))
	}
	sameRows(t, "rows after the reboot", rowsOf(t, l, "t"), want)
}

// flipData flips a byte in the middle of a block file's data (after its header).
func flipData(t *testing.T, path string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-len(data)/3] ^= 0x5a
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func firstBlockFile(t *testing.T, dir string) string {
	t.Helper()
	sd, err := shm.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := sd.Blocks()
	if err != nil || len(ids) == 0 {
		t.Fatalf("no block files in %s (%v)", dir, err)
	}
	return sd.BlockPath(ids[0])
}

// TestCorruptBlock damages a block file between a handoff and the next start: the
// start attaches it (the check is deferred), but no query reads it before the check,
// which fails; the block is reloaded from its disk copy, or, without one, from the
// WAL. Answers never include the damaged block.
func TestCorruptBlock(t *testing.T) {
	for _, withCopy := range []bool{true, false} {
		t.Run(fmt.Sprintf("disk copy %v", withCopy), func(t *testing.T) {
			d := newPersistDirs(t)
			cfg := persistConfig(d)
			l := startLeaf(t, cfg)
			l.s.shm.holdCopies.Store(!withCopy)
			fill(t, l, 0, 4, 400)
			if withCopy {
				waitDiskCopies(t, l)
			}
			want := rowsOf(t, l, "t")
			l.handoff(t)
			flipData(t, firstBlockFile(t, d.shm))

			l = startLeaf(t, cfg)
			l.s.shm.holdCopies.Store(!withCopy)
			if p := l.s.Stats().Start.Path; p != startShm {
				t.Fatalf("start path %q", p)
			}
			// The first read runs the block's deferred check, which fails; the block
			// is reloaded before the read goes on, so even the first answer is whole
			// and right.
			sameRows(t, "rows right after the start", rowsOf(t, l, "t"), want)
			waitFor(t, func() bool { return l.s.store.pendingChecks.Load() == 0 })
			sameRows(t, "rows after the background checks", rowsOf(t, l, "t"), want)
			src := map[bool]string{true: "disk", false: "wal"}[withCopy]
			if n := metricValue(t, l, "reef_leaf_block_reloads_total", src); n != 1 {
				t.Fatalf("%v reloads from %s, want 1", n, src)
			}
			if n := metricValue(t, l, "reef_leaf_block_verify_failures_total", ""); n != 1 {
				t.Fatalf("%v blocks failed their check, want 1", n)
			}
		})
	}
}

// TestCorruptManifest: a damaged manifest is not trusted; the start checks every
// block as after a crash.
func TestCorruptManifest(t *testing.T) {
	d := newPersistDirs(t)
	cfg := persistConfig(d)
	l := startLeaf(t, cfg)
	fill(t, l, 0, 3, 200)
	want := rowsOf(t, l, "t")
	l.handoff(t)
	path := filepath.Join(d.shm, shm.ManifestName)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-10] ^= 0x01
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	flipData(t, firstBlockFile(t, d.shm)) // and a block, caught by the checksum
	l = startLeaf(t, cfg)
	if p := l.s.Stats().Start.Path; p != startCrash {
		t.Fatalf("start path %q, want crash", p)
	}
	sameRows(t, "rows after a damaged manifest", rowsOf(t, l, "t"), want)
}

// TestWALTrim: once every row of a segment is in a block with a durable disk copy,
// the segment is deleted; what is left still recovers every row.
func TestWALTrim(t *testing.T) {
	d := newPersistDirs(t)
	cfg := persistConfig(d)
	cfg.WALSegmentBytes = 4 << 10
	l := startLeaf(t, cfg)
	fill(t, l, 0, 10, 100)
	grown := l.s.wal.Stats().Segments
	l.s.store.sealAll()
	waitDiskCopies(t, l)
	l.s.trimWAL()
	if n := l.s.wal.Stats().Segments; n >= grown || n > 2 {
		t.Fatalf("WAL has %d segments after trimming (had %d)", n, grown)
	}
	want := rowsOf(t, l, "t")
	l.stop()
	if err := os.RemoveAll(d.shm); err != nil {
		t.Fatal(err)
	}
	l = startLeaf(t, cfg)
	sameRows(t, "rows from disk after trimming", rowsOf(t, l, "t"), want)
}

// TestWALTrimKeepsPending: segments whose rows are not in a durable block stay.
func TestWALTrimKeepsPending(t *testing.T) {
	d := newPersistDirs(t)
	cfg := persistConfig(d)
	cfg.WALSegmentBytes = 4 << 10
	l := startLeaf(t, cfg)
	l.s.shm.holdCopies.Store(true)
	fill(t, l, 0, 6, 100)
	l.s.store.sealAll()
	segs := l.s.wal.Stats().Segments
	l.s.trimWAL()
	if n := l.s.wal.Stats().Segments; n != segs {
		t.Fatalf("trim deleted segments of blocks without a disk copy: %d of %d left", n, segs)
	}
}

func TestArrowReplay(t *testing.T) {
	d := newPersistDirs(t)
	cfg := persistConfig(d)
	l := startLeaf(t, cfg)
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "time", Type: arrow.PrimitiveTypes.Int64},
		{Name: "service", Type: arrow.BinaryTypes.String},
	}, nil)
	body := arrowStreamOf(t, schema, nil, func(b *array.RecordBuilder) {
		b.Field(0).(*array.Int64Builder).AppendValues([]int64{1_700_000_000, 1_700_000_001, 1_700_000_002}, nil)
		b.Field(1).(*array.StringBuilder).AppendValues([]string{"api", "web", "api"}, nil)
	})
	r := l.do(t, http.MethodPost, "/v1/ingest/t", body, "Content-Type", api.ContentTypeArrow, api.HeaderBatchID, "a-1")
	if r.status != http.StatusOK {
		t.Fatalf("arrow ingest: %d %s", r.status, r.body)
	}
	fill(t, l, 0, 1, 10)
	want := rowsOf(t, l, "t")
	l.stop()
	l = startLeaf(t, cfg)
	sameRows(t, "rows after replaying an Arrow batch", rowsOf(t, l, "t"), want)
	r = l.do(t, http.MethodPost, "/v1/ingest/t", body, "Content-Type", api.ContentTypeArrow, api.HeaderBatchID, "a-1")
	if r.status != http.StatusOK || !r.ingestResult(t).Duplicate {
		t.Fatalf("retried Arrow batch: %d %s", r.status, r.body)
	}
}

// TestRetentionRemovesFiles: blocks dropped by retention lose their files.
func TestRetentionRemovesFiles(t *testing.T) {
	d := newPersistDirs(t)
	cfg := persistConfig(d)
	cfg.MaxAge = time.Hour
	l := startLeaf(t, cfg)
	for k := range 2 {
		var sb strings.Builder
		for i := range 50 {
			fmt.Fprintf(&sb, `{"time":%d,"k":%d}`+"\n", 1_700_000_000+i, k) // long past MaxAge
		}
		l.ingest(t, "t", sb.String())
		l.s.store.sealAll()
	}
	waitDiskCopies(t, l)
	if n := countFiles(t, d.shm, ".blk"); n == 0 {
		t.Fatal("no block files after sealing")
	}
	if dropped := l.s.store.retain(time.Now()); dropped == 0 {
		t.Fatal("retention dropped nothing")
	}
	for _, c := range []struct{ dir, suffix string }{
		{d.shm, ".blk"}, {d.shm, ".cov"}, {filepath.Join(d.data, "blocks"), ".blk.sz"}, {filepath.Join(d.data, "blocks"), ".cov"},
	} {
		if n := countFiles(t, c.dir, c.suffix); n != 0 {
			t.Errorf("%d %s files left in %s after retention", n, c.suffix, c.dir)
		}
	}
}

func countFiles(t *testing.T, dir, suffix string) int {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if strings.HasSuffix(e.Name(), suffix) {
			n++
		}
	}
	return n
}

// TestLock: two leaves never share directories.
func TestLock(t *testing.T) {
	d := newPersistDirs(t)
	cfg := persistConfig(d)
	startLeaf(t, cfg)
	cfg.LockWait = 50 * time.Millisecond
	if s, err := New(cfg); err == nil {
		s.Close()
		t.Fatal("a second leaf started on the same directories")
	} else if !strings.Contains(err.Error(), "another process") {
		t.Fatalf("second leaf: %v", err)
	}
}

// TestForeignManifest: a handoff of another leaf is refused.
func TestForeignManifest(t *testing.T) {
	d := newPersistDirs(t)
	cfg := persistConfig(d)
	l := startLeaf(t, cfg)
	fill(t, l, 0, 1, 10)
	l.handoff(t)
	cfg.ID = "someone-else"
	if s, err := New(cfg); err == nil {
		s.Close()
		t.Fatal("a leaf attached another leaf's handoff")
	} else if !strings.Contains(err.Error(), "holds a handoff of leaf") {
		t.Fatalf("start on another leaf's directory: %v", err)
	}
}

// TestWALSyncPolicies: every policy keeps rows across a stop.
func TestWALSyncPolicies(t *testing.T) {
	for _, p := range []wal.SyncPolicy{wal.SyncBatch, wal.SyncAlways, wal.SyncNone} {
		t.Run(p.String(), func(t *testing.T) {
			d := newPersistDirs(t)
			cfg := persistConfig(d)
			cfg.WALSync = p
			l := startLeaf(t, cfg)
			fill(t, l, 0, 2, 20)
			want := rowsOf(t, l, "t")
			l.stop()
			l = startLeaf(t, cfg)
			sameRows(t, "rows", rowsOf(t, l, "t"), want)
		})
	}
}

// metricValue returns the value of the counter name (with label value lv, if set)
// in the leaf's registry, 0 if it has none.
func metricValue(t *testing.T, l *runningLeaf, name, lv string) float64 {
	t.Helper()
	mfs, err := l.s.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if lv == "" || (len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == lv) {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestTidyLeavesWritesAlone: the tidy after a handoff start removes the strays of
// the start's blocks — temporary files, cover files without their block — but not
// those of a block being reloaded meanwhile, nor of blocks newer than the start,
// whose writes may be in progress.
func TestTidyLeavesWritesAlone(t *testing.T) {
	d := newPersistDirs(t)
	cfg := persistConfig(d)
	l := startLeaf(t, cfg)
	write := func(name string) string {
		t.Helper()
		p := filepath.Join(d.shm, name)
		if err := os.WriteFile(p, []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	stale := write(".tmp-0000000000000003.cov-111")
	loneCover := write(coverName(4))
	reloadingTemp := write(".tmp-0000000000000005.blk-222")
	reloadingCover := write(coverName(5))
	newer := write(".tmp-0000000000000009.cov-333")
	l.s.reloadMu.Lock()
	if l.s.reloading == nil {
		l.s.reloading = map[uint64]chan struct{}{}
	}
	l.s.reloading[5] = make(chan struct{})
	l.s.reloadMu.Unlock()

	l.s.tidy(8) // the start held blocks up to id 8
	for p, want := range map[string]bool{stale: false, loneCover: false, reloadingTemp: true, reloadingCover: true, newer: true} {
		if _, err := os.Stat(p); (err == nil) != want {
			t.Errorf("%s: present %v after tidy, want %v", filepath.Base(p), err == nil, want)
		}
	}
	l.s.reloadMu.Lock()
	delete(l.s.reloading, 5)
	l.s.reloadMu.Unlock()
}
