package wal

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func testOptions(dir string) Options {
	return Options{Dir: dir, Logger: slog.New(slog.DiscardHandler)}
}

func openTest(t *testing.T, opts Options) *WAL {
	t.Helper()
	w, err := Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// rec makes record i of a test log.
func rec(i int) *Record {
	return &Record{
		Time:    time.Unix(1_700_000_000, int64(i)),
		Format:  FormatNDJSON,
		Table:   fmt.Sprintf("t%d", i%3),
		BatchID: fmt.Sprintf("batch-%d", i),
		Payload: bytes.Repeat([]byte(fmt.Sprintf(`{"i":%d}`+"\n", i)), 1+i%5),
	}
}

// replayAll returns every record of the log in dir as a fresh WAL reads it.
func replayAll(t *testing.T, opts Options) ([]Record, ReplayStats) {
	t.Helper()
	w := openTest(t, opts)
	var out []Record
	st, err := w.Replay(func(r *Record) error {
		c := *r
		c.Payload = slices.Clone(r.Payload)
		out = append(out, c)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out, st
}

func checkRecords(t *testing.T, got []Record, want []int, firstSeq uint64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("replayed %d records, want %d", len(got), len(want))
	}
	for k, i := range want {
		w := rec(i)
		g := got[k]
		if g.Seq != firstSeq+uint64(k) || !g.Time.Equal(w.Time) || g.Table != w.Table || g.BatchID != w.BatchID ||
			g.Format != w.Format || !bytes.Equal(g.Payload, w.Payload) {
			t.Fatalf("record %d = {seq %d %v %q %q %q}, want {seq %d %v %q %q %q}", k,
				g.Seq, g.Time, g.Table, g.BatchID, g.Payload, firstSeq+uint64(k), w.Time, w.Table, w.BatchID, w.Payload)
		}
	}
}

func seq(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func TestAppendReplay(t *testing.T) {
	for _, p := range []SyncPolicy{SyncBatch, SyncAlways, SyncNone} {
		t.Run(p.String(), func(t *testing.T) {
			opts := testOptions(t.TempDir())
			opts.Sync = p
			opts.SegmentBytes = 300 // a few records per segment
			w := openTest(t, opts)
			for i := range 40 {
				s, err := w.Append(rec(i))
				if err != nil {
					t.Fatal(err)
				}
				if s != uint64(i+1) {
					t.Fatalf("record %d got seq %d", i, s)
				}
			}
			if st := w.Stats(); st.Segments < 5 || st.NextSeq != 41 || (p != SyncNone && st.Synced != 40) {
				t.Fatalf("stats %+v, want several segments, next 41, synced 40", st)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			got, st := replayAll(t, opts)
			checkRecords(t, got, seq(40), 1)
			if st.Records != 40 || st.FirstSeq != 1 || st.LastSeq != 40 || len(st.Damaged) != 0 {
				t.Fatalf("replay stats %+v", st)
			}
		})
	}
}

func TestConcurrentAppend(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.SegmentBytes = 1000
	w := openTest(t, opts)
	var wg sync.WaitGroup
	seqs := make([][]uint64, 8)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 25 {
				s, err := w.Append(rec(g*25 + i))
				if err != nil {
					t.Error(err)
					return
				}
				seqs[g] = append(seqs[g], s)
			}
		}()
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	var all []uint64
	for _, s := range seqs {
		if !slices.IsSorted(s) {
			t.Fatalf("one writer's seqs are out of order: %v", s)
		}
		all = append(all, s...)
	}
	slices.Sort(all)
	for i, s := range all {
		if s != uint64(i+1) {
			t.Fatalf("seqs %v are not 1..200 without gaps", all)
		}
	}
	got, _ := replayAll(t, opts)
	if len(got) != 200 {
		t.Fatalf("replayed %d records, want 200", len(got))
	}
}

// TestGroupCommit: records written without waiting are made durable by one fsync.
func TestGroupCommit(t *testing.T) {
	w := openTest(t, testOptions(t.TempDir()))
	for i := range 10 {
		if _, err := w.Write(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	before := w.Stats().Syncs
	if err := w.WaitDurable(10); err != nil {
		t.Fatal(err)
	}
	if err := w.WaitDurable(3); err != nil {
		t.Fatal(err)
	}
	st := w.Stats()
	if st.Syncs != before+1 || st.Synced != 10 {
		t.Fatalf("after two waits: %d fsyncs (before %d), synced %d; want one fsync covering 10", st.Syncs, before, st.Synced)
	}
}

func TestTrimBefore(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.SegmentBytes = 200
	w := openTest(t, opts)
	for i := range 30 {
		if _, err := w.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	segs := w.Stats().Segments
	n, err := w.TrimBefore(15)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 || w.Stats().Segments != segs-n {
		t.Fatalf("trimmed %d of %d segments", n, segs)
	}
	// Everything from 15 on is still there; what is left before it is in the
	// segment that holds 15.
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got, st := replayAll(t, opts)
	if st.FirstSeq > 15 || st.LastSeq != 30 {
		t.Fatalf("after trimming before 15 the log holds %d..%d", st.FirstSeq, st.LastSeq)
	}
	first := int(got[0].Seq) - 1
	checkRecords(t, got, seq(30)[first:], uint64(first+1))

	// Trimming past the end keeps the active segment, and numbers go on.
	w = openTest(t, opts)
	if _, err := w.TrimBefore(1 << 40); err != nil {
		t.Fatal(err)
	}
	if st := w.Stats(); st.Segments != 1 || st.NextSeq != 31 {
		t.Fatalf("after trimming everything: %+v, want the active segment and next seq 31", st)
	}
	w.Close()
	w = openTest(t, opts)
	if s, err := w.Append(rec(30)); err != nil || s != 31 {
		t.Fatalf("append after trimming everything: seq %d, %v; want 31", s, err)
	}
}

func TestMinNextSeq(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.MinNextSeq = 500
	w := openTest(t, opts)
	if s, err := w.Append(rec(0)); err != nil || s != 500 {
		t.Fatalf("first append: seq %d, %v; want 500", s, err)
	}
	w.Close()
	opts.MinNextSeq = 0
	w = openTest(t, opts)
	if s, err := w.Append(rec(1)); err != nil || s != 501 {
		t.Fatalf("append after reopen: seq %d, %v; want 501", s, err)
	}
}

// lastSegment returns the path of the newest segment that holds records.
func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	segs, err := listSegments(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range segs {
		out = append(out, s.path)
	}
	return out
}

// TestDamagedTail cuts the log at every byte of its last record, as a crash during a
// write would: a reopened log holds the records before it, cuts the rest off, and
// appends after them.
func TestDamagedTail(t *testing.T) {
	src := t.TempDir()
	opts := testOptions(src)
	w := openTest(t, opts)
	for i := range 3 {
		if _, err := w.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	files := segmentFiles(t, src)
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var ends []int64 // end offsets of the records
	sr := &segmentReader{f: readerAt(data), size: int64(len(data)), off: segmentHeaderLen, next: 1}
	for {
		if _, err := sr.read(true); err != nil {
			break
		}
		ends = append(ends, sr.off)
	}
	for cut := ends[1]; cut < ends[2]; cut++ {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(files[0])), data[:cut], 0o644); err != nil {
			t.Fatal(err)
		}
		o := testOptions(dir)
		w := openTest(t, o)
		if s, err := w.Append(rec(7)); err != nil || s != 3 {
			t.Fatalf("cut at %d: append got seq %d, %v; want 3", cut, s, err)
		}
		w.Close()
		got, st := replayAll(t, o)
		if len(st.Damaged) != 0 {
			t.Fatalf("cut at %d: damage reported after the tail was cut: %v", cut, st.Damaged)
		}
		if len(got) != 3 || got[2].BatchID != rec(7).BatchID {
			t.Fatalf("cut at %d: replayed %d records", cut, len(got))
		}
		checkRecords(t, got[:2], []int{0, 1}, 1)
	}
}

// TestDamagedMiddle flips a byte inside an older segment: the rest of that segment is
// reported lost, later segments are still replayed.
func TestDamagedMiddle(t *testing.T) {
	opts := testOptions(t.TempDir())
	opts.SegmentBytes = 250
	w := openTest(t, opts)
	for i := range 20 {
		if _, err := w.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	files := segmentFiles(t, opts.Dir)
	data, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	data[len(data)-3] ^= 0x40 // inside the first segment's last record
	if err := os.WriteFile(files[0], data, 0o644); err != nil {
		t.Fatal(err)
	}
	got, st := replayAll(t, opts)
	if len(st.Damaged) != 1 {
		t.Fatalf("damage notes %v, want one", st.Damaged)
	}
	if st.LastSeq != 20 || len(got) >= 20 || len(got) < 15 {
		t.Fatalf("replayed %d records up to %d; want all but the damaged one's segment rest, up to 20", len(got), st.LastSeq)
	}
}

func TestScan(t *testing.T) {
	opts := testOptions(t.TempDir())
	w := openTest(t, opts)
	long := rec(1)
	long.BatchID = string(bytes.Repeat([]byte("b"), 3000)) // longer than the first read
	for _, r := range []*Record{rec(0), long, rec(2)} {
		if _, err := w.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	if _, err := w.Scan(func(r *Record) error {
		if r.Payload != nil {
			t.Errorf("scan returned a payload")
		}
		ids = append(ids, r.BatchID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(ids) != 3 || ids[0] != rec(0).BatchID || ids[1] != long.BatchID || ids[2] != rec(2).BatchID {
		t.Fatalf("scanned ids %q", ids)
	}
}

func TestBadRecords(t *testing.T) {
	w := openTest(t, testOptions(t.TempDir()))
	for _, r := range []*Record{
		{Format: FormatNDJSON},  // no table
		{Format: 9, Table: "t"}, // unknown format
		{Format: FormatNDJSON, Table: "t", BatchID: string(make([]byte, MaxBatchIDLen+1))},
	} {
		if _, err := w.Append(r); err == nil {
			t.Errorf("append of %+v succeeded", r)
		}
	}
	if _, err := w.Append(rec(0)); err != nil {
		t.Fatalf("a bad record broke the log: %v", err)
	}
}

func TestParseSyncPolicy(t *testing.T) {
	for _, s := range []string{"batch", "always", "none"} {
		p, err := ParseSyncPolicy(s)
		if err != nil || p.String() != s {
			t.Errorf("ParseSyncPolicy(%q) = %v, %v", s, p, err)
		}
	}
	if _, err := ParseSyncPolicy("sometimes"); err == nil {
		t.Error("ParseSyncPolicy accepted nonsense")
	}
}

func TestReadSegmentDamage(t *testing.T) {
	for _, data := range [][]byte{nil, []byte("REEF-WAL"), []byte("NOT-A-WAL-SEGMENT-AT-ALL")} {
		if err := ReadSegment(data, func(*Record) error { return nil }); !IsDamaged(err) {
			t.Errorf("ReadSegment(%q) = %v, want damage", data, err)
		}
	}
	_ = io.EOF
}

// TestCleanMark: a clean Close leaves the log's end in CLEAN; the next Open takes it
// and appends to the last segment. Once appended to, the mark no longer matches: a
// crash then (the files copied while the log is open) is read in full, as is a
// segment changed behind the log's back.
func TestCleanMark(t *testing.T) {
	opts := testOptions(t.TempDir())
	w := openTest(t, opts)
	for i := range 5 {
		if _, err := w.Append(rec(i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(opts.Dir, cleanName)); err != nil {
		t.Fatalf("no clean mark after Close: %v", err)
	}
	segs := len(segmentFiles(t, opts.Dir))
	w = openTest(t, opts)
	if s, err := w.Append(rec(5)); err != nil || s != 6 {
		t.Fatalf("append after a clean reopen: seq %d, %v; want 6", s, err)
	}
	if n := len(segmentFiles(t, opts.Dir)); n != segs {
		t.Fatalf("a clean reopen started a new segment: %d segments, had %d", n, segs)
	}

	// A crash now: the files as they are while the log is open.
	crashed := testOptions(t.TempDir())
	for _, name := range append(segmentFiles(t, opts.Dir), filepath.Join(opts.Dir, cleanName)) {
		data, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(crashed.Dir, filepath.Base(name)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, st := replayAll(t, crashed)
	if len(got) != 6 || len(st.Damaged) != 0 {
		t.Fatalf("after a crash past a clean mark: %d records (damage %v), want 6", len(got), st.Damaged)
	}
	w.Close()

	// Garbage appended after the clean Close: the mark no longer matches, the tail
	// is read, and cut.
	files := segmentFiles(t, opts.Dir)
	f, err := os.OpenFile(files[len(files)-1], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write([]byte("garbage after the end"))
	f.Close()
	w = openTest(t, opts)
	if s, err := w.Append(rec(6)); err != nil || s != 7 {
		t.Fatalf("append after a changed segment: seq %d, %v; want 7", s, err)
	}
	w.Close()
	got, st = replayAll(t, opts)
	if len(got) != 7 || len(st.Damaged) != 0 {
		t.Fatalf("replayed %d records (damage %v), want 7", len(got), st.Damaged)
	}
}
