package aggregator

import (
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/query/plan"
)

func TestLineChunker(t *testing.T) {
	f := func(input string, max int, want []string, wantFirst []int) {
		t.Helper()
		c := newLineChunker(strings.NewReader(input), max)
		var got []string
		var firsts []int
		for {
			chunk, first, err := c.next()
			if err != nil {
				t.Fatalf("%q: %v", input, err)
			}
			if chunk == nil {
				break
			}
			got = append(got, string(chunk))
			firsts = append(firsts, first)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%q max %d: chunks %q, want %q", input, max, got, want)
		}
		for i := range wantFirst {
			if i >= len(firsts) || firsts[i] != wantFirst[i] {
				t.Errorf("%q: first lines %v, want %v", input, firsts, wantFirst)
				break
			}
		}
	}
	f("", 10, nil, nil)
	f("a\nb\nc\n", 100, []string{"a\nb\nc\n"}, []int{1})
	f("a\nb\nc", 100, []string{"a\nb\nc"}, []int{1})
	f("aaaa\nbbbb\ncccc\n", 6, []string{"aaaa\nbbbb\n", "cccc\n"}, []int{1, 3})
	f("aaaa\nbbbb\ncccc\n", 4, []string{"aaaa\n", "bbbb\n", "cccc\n"}, []int{1, 2, 3})
	f("x\n\n\n", 100, []string{"x\n\n\n"}, []int{1})
}

func TestRecentBatchesBounded(t *testing.T) {
	r := newRecentBatches(3)
	a, b := &child{url: "a"}, &child{url: "b"}
	r.put("1", a)
	r.put("2", b)
	r.put("3", a)
	r.put("4", b) // evicts "1"
	if r.get("1") != nil || r.get("2") != b || r.get("4") != b {
		t.Fatalf("eviction wrong: 1=%v 2=%v 4=%v", r.get("1"), r.get("2"), r.get("4"))
	}
	if len(r.m) != 3 {
		t.Fatalf("map holds %d ids, bound 3", len(r.m))
	}
	r.put("2", a) // update in place, no eviction
	if r.get("2") != a || r.get("3") != a || len(r.m) != 3 {
		t.Fatal("update in place evicted or failed")
	}
}

func TestEstimateRows(t *testing.T) {
	st := api.Stats{Tables: map[string]api.TableStats{"t": {Name: "t", Rows: 1000, MinTime: 0, MaxTime: 999}}}
	f := func(lo, hi int64, want int64) {
		t.Helper()
		p := &plan.Plan{Table: "t", TimeMin: lo, TimeMax: hi}
		if got := estimateRows(st, p); got != want {
			t.Errorf("[%d,%d]: %d, want %d", lo, hi, got, want)
		}
	}
	f(-1<<63, 1<<63-1, 1000)
	f(500, 1<<63-1, 500)
	f(0, 99, 100)
	f(2000, 3000, 0)
	if got := estimateRows(st, &plan.Plan{Table: "other", TimeMax: 1 << 62}); got != 0 {
		t.Errorf("unknown table estimated %d rows", got)
	}
}

func TestPickPrefersFreeMemory(t *testing.T) {
	s := &Server{members: &members{}}
	big := &child{url: "big", up: true, stats: api.Stats{FreeBytes: 1000}}
	small := &child{url: "small", up: true, stats: api.Stats{FreeBytes: 10}}
	down := &child{url: "down", up: false, stats: api.Stats{FreeBytes: 1 << 40}}
	s.members.children = []*child{big, small, down}
	for i := 0; i < 100; i++ {
		if c := s.pick(map[*child]bool{}); c != big {
			t.Fatalf("picked %s, want big (only two routable, big has more free memory)", c.url)
		}
	}
	if c := s.pick(map[*child]bool{big: true}); c != small {
		t.Fatalf("with big tried, picked %v", c)
	}
	if c := s.pick(map[*child]bool{big: true, small: true}); c != nil {
		t.Fatalf("picked %s although every routable child was tried", c.url)
	}
	small.exclude(time.Hour)
	if c := s.pick(map[*child]bool{big: true}); c != nil {
		t.Fatalf("picked excluded %s", c.url)
	}
}

func TestMergeTableStatsUnknownRange(t *testing.T) {
	known := api.TableStats{Name: "t", Rows: 10, MinTime: 100, MaxTime: 200}
	unknown := api.TableStats{Name: "t", Rows: 5, MinTime: 1, MaxTime: 0}
	for _, order := range [][]api.TableStats{{known, unknown}, {unknown, known}} {
		got := mergeTableStats(mergeTableStats(api.TableStats{}, order[0]), order[1])
		if got.Rows != 15 || got.MinTime != 100 || got.MaxTime != 200 {
			t.Errorf("merge %+v: rows %d time [%d,%d], want 15 [100,200]", order, got.Rows, got.MinTime, got.MaxTime)
		}
	}
}

// TestPickSpreadsBetweenHealthChecks routes many batches with no health check in
// between: the rows each leaf acknowledged count against its free memory, so the
// leaf that looked freest at the last check does not take two thirds of the writes.
func TestPickSpreadsBetweenHealthChecks(t *testing.T) {
	s := &Server{members: &members{}}
	mk := func(name string, free int64) *child {
		return &child{url: name, up: true, stats: api.Stats{FreeBytes: free, Rows: 1000, Bytes: 30_000}}
	}
	s.members.children = []*child{mk("a", 1<<30+1), mk("b", 1<<30), mk("c", 1<<30)}
	const batches, rows = 3000, 100
	got := map[string]int{}
	for i := 0; i < batches; i++ {
		c := s.pick(map[*child]bool{})
		c.noteIngest("events", rows, rows*200)
		got[c.url]++
	}
	for _, c := range s.members.children {
		share := float64(got[c.url]) / batches
		if share < 0.30 || share > 0.37 {
			t.Errorf("leaf %s took %.1f%% of the batches (%v), want about a third", c.url, 100*share, got)
		}
	}
	if st := s.members.children[0].stats; st.Rows != 1000+int64(got["a"])*rows || st.Bytes != 30_000+int64(got["a"])*rows*30 {
		t.Errorf("leaf a's stats after %d batches: %d rows, %d bytes", got["a"], st.Rows, st.Bytes)
	}
}

// TestLineChunkerRandom checks the chunker against the definition on random
// streams: lines are taken whole until a chunk holds at least max bytes; a line
// over 4×max is replaced by an empty one and reported; the reader hands out data
// in odd pieces so that lines straddle its reads, and the chunker's direct reads.
func TestLineChunkerRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	for iter := range 2000 {
		// Mostly small chunks, read through the chunker's buffer; now and then
		// chunks larger than that buffer, which the chunker reads straight into.
		max, lines, lineLen := 1+rng.IntN(60), rng.IntN(40), func(max int) int { return rng.IntN(5 * max) }
		if iter%50 == 0 {
			max, lines = 64<<10+rng.IntN(128<<10), rng.IntN(20)
			lineLen = func(max int) int {
				if rng.IntN(4) == 0 {
					return rng.IntN(5 * max)
				}
				return rng.IntN(max / 4)
			}
		}
		var in strings.Builder
		for range lines {
			in.WriteString(strings.Repeat("x", lineLen(max)))
			in.WriteByte('\n')
		}
		if rng.IntN(2) == 0 {
			in.WriteString(strings.Repeat("y", rng.IntN(3*max)))
		}
		input := in.String()

		// The definition.
		var want []string
		var wantFirst, wantLong []int
		var cur strings.Builder
		curFirst, line := 0, 0
		rest := input
		for len(rest) > 0 {
			end := strings.IndexByte(rest, '\n') + 1
			if end == 0 {
				end = len(rest)
			}
			l := rest[:end]
			rest = rest[end:]
			line++
			if cur.Len() == 0 {
				curFirst = line
			}
			if len(l) > 4*max {
				l = "\n"
				wantLong = append(wantLong, line)
			}
			cur.WriteString(l)
			if cur.Len() >= max {
				want, wantFirst = append(want, cur.String()), append(wantFirst, curFirst)
				cur.Reset()
			}
		}
		if strings.TrimSpace(cur.String()) != "" {
			want, wantFirst = append(want, cur.String()), append(wantFirst, curFirst)
		}

		var r io.Reader = iotest.HalfReader(strings.NewReader(input))
		if rng.IntN(2) == 0 {
			r = iotest.DataErrReader(r) // the last data comes with io.EOF
		}
		c := newLineChunker(r, max)
		var got []string
		var gotFirst, gotLong []int
		for {
			chunk, first, err := c.next()
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range c.long {
				gotLong = append(gotLong, e.Line)
			}
			c.long = c.long[:0]
			if chunk == nil {
				break
			}
			got, gotFirst = append(got, string(chunk)), append(gotFirst, first)
		}
		if !slices.Equal(got, want) || !slices.Equal(gotFirst, wantFirst) || !slices.Equal(gotLong, wantLong) {
			lens := func(cs []string) (n []int) {
				for _, c := range cs {
					n = append(n, len(c))
				}
				return n
			}
			t.Fatalf("max %d, input of %d bytes:\nchunk sizes %v first %v long %v\nwant        %v first %v long %v",
				max, len(input), lens(got), gotFirst, gotLong, lens(want), wantFirst, wantLong)
		}
	}
}

// TestPickCountsBatchesInFlight: batches sent at once do not all go to the leaf
// that looked freest; one with a batch in flight loses to one without.
func TestPickCountsBatchesInFlight(t *testing.T) {
	s := &Server{members: &members{}}
	a := &child{url: "a", up: true, stats: api.Stats{FreeBytes: 1 << 30}}
	b := &child{url: "b", up: true, stats: api.Stats{FreeBytes: 1<<30 - 1000}}
	s.members.children = []*child{a, b}
	if c := s.pick(map[*child]bool{}); c != a {
		t.Fatalf("picked %s with nothing in flight, want a (more free memory)", c.url)
	}
	a.inflight.Add(4 << 20)
	if c := s.pick(map[*child]bool{}); c != b {
		t.Fatalf("picked %s, want b: a has a 4 MiB batch in flight", c.url)
	}
	b.inflight.Add(8 << 20)
	if c := s.pick(map[*child]bool{}); c != a {
		t.Fatalf("picked %s, want a: b has more in flight", c.url)
	}
}
