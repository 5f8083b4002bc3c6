package bench

import (
	"math"
	"slices"
	"sync"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
)

// Timeline bounds.
const (
	// maxBuckets bounds a timeline's buckets: past it, neighbouring buckets are merged
	// and the bucket width doubles, so a run of any length keeps at most this many.
	maxBuckets = 1200
	// maxMarks bounds the marks (faults, deploy steps) a timeline keeps.
	maxMarks = 10_000
	// latencyAccuracy is the relative accuracy of the latency sketches.
	latencyAccuracy = 0.01
)

// Timeline records what happened during a run in buckets of equal width, from its
// start: rows acknowledged, ingest and query latencies, query coverage, and marks
// (a fault injected, a leaf restarted). It starts with one-second buckets and
// doubles their width whenever there would be more than 1200, so its memory is
// bounded whatever the run's length. It is safe for concurrent use.
type Timeline struct {
	mu      sync.Mutex
	start   time.Time
	width   time.Duration
	buckets []*bucket
	marks   []Mark
	cutMark int // marks not kept past maxMarks
}

// bucket is one interval of a Timeline. Events are counted in the bucket in which
// they completed.
type bucket struct {
	rows, bytes  int64
	batches      int64
	retries      int64
	ingestLat    *ddsketch.DDSketch // seconds; nil until the first ingest
	queries      int64
	queryErrors  int64
	partial      int64
	queryLat     *ddsketch.DDSketch // seconds; nil until the first query
	queryMax     float64            // seconds
	covMin       float64            // percent, over the queries that answered
	covSum       float64
	covN         int64
	ingestErrors int64
}

// Mark is something that happened at one instant of a run, shown on the plots.
type Mark struct {
	// At is the time since the start of the run, in seconds.
	At float64 `json:"at_s"`
	// Kind is MarkFault, MarkRecover or MarkInfo.
	Kind string `json:"kind"`
	What string `json:"what"`
}

// Kinds of marks: a fault injected (kill, stop, a leaf going down for a deploy), a
// recovery (restart, continue, a leaf back), anything else.
const (
	MarkFault   = "fault"
	MarkRecover = "recover"
	MarkInfo    = "info"
)

// NewTimeline returns an empty timeline that starts at start.
func NewTimeline(start time.Time) *Timeline {
	return &Timeline{start: start, width: time.Second}
}

// Start returns the instant the timeline counts from.
func (t *Timeline) Start() time.Time { return t.start }

// at returns the bucket that holds instant at, adding buckets (and coarsening) as
// needed; t.mu is held. An instant before the start goes into the first bucket.
func (t *Timeline) at(at time.Time) *bucket {
	d := max(at.Sub(t.start), 0)
	i := int(d / t.width)
	for i >= maxBuckets {
		t.coarsen()
		i = int(d / t.width)
	}
	for len(t.buckets) <= i {
		t.buckets = append(t.buckets, &bucket{covMin: math.Inf(1)})
	}
	return t.buckets[i]
}

// coarsen merges neighbouring buckets pairwise and doubles the width; t.mu is held.
func (t *Timeline) coarsen() {
	n := (len(t.buckets) + 1) / 2
	for i := range n {
		b := t.buckets[2*i]
		if 2*i+1 < len(t.buckets) {
			b.merge(t.buckets[2*i+1])
		}
		t.buckets[i] = b
	}
	clear(t.buckets[n:])
	t.buckets = t.buckets[:n]
	t.width *= 2
}

func (b *bucket) merge(o *bucket) {
	b.rows += o.rows
	b.bytes += o.bytes
	b.batches += o.batches
	b.retries += o.retries
	b.ingestErrors += o.ingestErrors
	b.ingestLat = mergeSketch(b.ingestLat, o.ingestLat)
	b.queries += o.queries
	b.queryErrors += o.queryErrors
	b.partial += o.partial
	b.queryLat = mergeSketch(b.queryLat, o.queryLat)
	b.queryMax = max(b.queryMax, o.queryMax)
	b.covMin = min(b.covMin, o.covMin)
	b.covSum += o.covSum
	b.covN += o.covN
}

func mergeSketch(a, b *ddsketch.DDSketch) *ddsketch.DDSketch {
	switch {
	case b == nil:
		return a
	case a == nil:
		return b
	}
	_ = a.MergeWith(b) // same mapping: cannot fail
	return a
}

// newSketch returns an empty latency sketch.
func newSketch() *ddsketch.DDSketch {
	s, err := ddsketch.LogCollapsingLowestDenseDDSketch(latencyAccuracy, 2048)
	if err != nil {
		panic("BUG: bench: " + err.Error()) // constant arguments
	}
	return s
}

// addLatency adds d (as seconds) to *s, creating the sketch if needed.
func addLatency(s **ddsketch.DDSketch, d time.Duration) {
	if *s == nil {
		*s = newSketch()
	}
	_ = (*s).Add(max(d.Seconds(), 1e-9)) // positive and finite: cannot fail
}

// Ingest records a batch of rows (and bytes of payload) acknowledged at at, after
// its last attempt took latency.
func (t *Timeline) Ingest(at time.Time, rows, bytes int64, latency time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.at(at)
	b.rows += rows
	b.bytes += bytes
	b.batches++
	addLatency(&b.ingestLat, latency)
}

// IngestRetry records an ingest attempt that failed and will be repeated.
func (t *Timeline) IngestRetry(at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.at(at).retries++
}

// IngestError records a batch that was given up.
func (t *Timeline) IngestError(at time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.at(at).ingestErrors++
}

// Query records a query that completed at at after latency. A query that failed has
// err set and no coverage; one that answered has its coverage percent.
func (t *Timeline) Query(at time.Time, latency time.Duration, coverage float64, partial bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	b := t.at(at)
	b.queries++
	if err != nil {
		b.queryErrors++
		return
	}
	addLatency(&b.queryLat, latency)
	b.queryMax = max(b.queryMax, latency.Seconds())
	if partial {
		b.partial++
	}
	b.covMin = min(b.covMin, coverage)
	b.covSum += coverage
	b.covN++
}

// Mark records an event of a kind at at, e.g. (MarkFault, "kill -9 leaf-1").
func (t *Timeline) Mark(at time.Time, kind, what string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.marks) >= maxMarks {
		t.cutMark++
		return
	}
	t.marks = append(t.marks, Mark{At: round3(max(at.Sub(t.start), 0).Seconds()), Kind: kind, What: what})
}

// Marks returns the marks in the order they were made.
func (t *Timeline) Marks() []Mark {
	t.mu.Lock()
	defer t.mu.Unlock()
	return slices.Clone(t.marks)
}

// Point is one bucket of a timeline as reported: rates are per second of the bucket,
// latencies in milliseconds, coverage in percent. Fields without data (no query
// answered in the bucket) are nil.
type Point struct {
	// T is the bucket's start and Width its length, in seconds since the run started.
	T     float64 `json:"t_s"`
	Width float64 `json:"width_s"`

	Rows         int64    `json:"rows"`
	RowsPerSec   float64  `json:"rows_per_s"`
	MBPerSec     float64  `json:"mb_per_s"`
	Batches      int64    `json:"batches"`
	Retries      int64    `json:"retries"`
	IngestErrors int64    `json:"ingest_errors,omitempty"`
	IngestP99MS  *float64 `json:"ingest_p99_ms,omitempty"`

	Queries      int64    `json:"queries"`
	QueryErrors  int64    `json:"query_errors"`
	Partial      int64    `json:"partial"`
	P50MS        *float64 `json:"p50_ms,omitempty"`
	P99MS        *float64 `json:"p99_ms,omitempty"`
	MaxMS        *float64 `json:"max_ms,omitempty"`
	CoverageMin  *float64 `json:"coverage_min,omitempty"`
	CoverageMean *float64 `json:"coverage_mean,omitempty"`
}

// Points returns the buckets from the start up to until (exclusive of buckets that
// start at or after it), empty buckets included, so the series has no gaps.
func (t *Timeline) Points(until time.Time) []Point {
	t.mu.Lock()
	defer t.mu.Unlock()
	if until.After(t.start) {
		t.at(until.Add(-time.Nanosecond)) // make sure the series reaches until
	}
	w := t.width.Seconds()
	out := make([]Point, 0, len(t.buckets))
	for i, b := range t.buckets {
		// The last bucket may be cut short by until: its rates are per second of the
		// part that was run.
		width := w
		if rest := until.Sub(t.start).Seconds() - float64(i)*w; rest > 0 && rest < w {
			width = rest
		}
		p := Point{
			T:            round3(float64(i) * w),
			Width:        round3(width),
			Rows:         b.rows,
			RowsPerSec:   round3(float64(b.rows) / width),
			MBPerSec:     round3(float64(b.bytes) / 1e6 / width),
			Batches:      b.batches,
			Retries:      b.retries,
			IngestErrors: b.ingestErrors,
			Queries:      b.queries,
			QueryErrors:  b.queryErrors,
			Partial:      b.partial,
		}
		if b.ingestLat != nil {
			p.IngestP99MS = msAt(b.ingestLat, 0.99)
		}
		if b.queryLat != nil {
			p.P50MS = msAt(b.queryLat, 0.50)
			p.P99MS = msAt(b.queryLat, 0.99)
			p.MaxMS = ptr(round3(b.queryMax * 1000))
		}
		if b.covN > 0 {
			p.CoverageMin = ptr(round3(b.covMin))
			p.CoverageMean = ptr(round3(b.covSum / float64(b.covN)))
		}
		out = append(out, p)
	}
	return out
}

// msAt returns the q quantile of a sketch of seconds in milliseconds.
func msAt(s *ddsketch.DDSketch, q float64) *float64 {
	v, err := s.GetValueAtQuantile(q)
	if err != nil {
		return nil
	}
	return ptr(round3(v * 1000))
}

func ptr[T any](v T) *T { return &v }

// round3 rounds to three decimals, so reports do not carry float noise.
func round3(v float64) float64 { return math.Round(v*1000) / 1000 }
