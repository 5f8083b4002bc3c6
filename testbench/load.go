package testbench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/reef-db/reef/api"
)

// Loader defaults.
const (
	DefaultBatchRows   = 10_000
	DefaultConcurrency = 4
	DefaultMaxAttempts = 30

	// maxLeafEntries bounds LoadStats.Leaves; rows acknowledged by further leaves are
	// counted under otherLeaves.
	maxLeafEntries = 1024
	otherLeaves    = "(other)"

	retryBaseDelay = 50 * time.Millisecond
	retryMaxDelay  = 2 * time.Second
)

// LoadOptions tune Load. The zero value is usable.
type LoadOptions struct {
	// BatchRows is how many events go into one ingest request (default
	// DefaultBatchRows).
	BatchRows int
	// Concurrency is how many requests are in flight at once (default
	// DefaultConcurrency). It is also the number of batch buffers: Load never holds
	// more than Concurrency batches in memory.
	Concurrency int
	// Progress, when not nil, receives a progress line every ProgressEvery and a
	// summary line at the end.
	Progress io.Writer
	// ProgressEvery is the interval between progress lines (default 1s).
	ProgressEvery time.Duration
	// MaxAttempts bounds the attempts per batch (default DefaultMaxAttempts).
	MaxAttempts int
	// BatchIDPrefix starts every batch id; batch i is sent as "<prefix>-<i>". The
	// default is derived from the resolved GenConfig and BatchRows, so the same batch
	// always has the same id: loading the same dataset again, or retrying a batch whose
	// answer was lost, adds nothing. Set a unique prefix to load a dataset twice.
	BatchIDPrefix string
}

// LoadStats are the totals of one Load.
type LoadStats struct {
	// Rows counts the rows the cluster acknowledged as stored, including those of
	// batches it reported as duplicates (already held).
	Rows int64
	// Rejected counts rows refused whole; RowErrors counts per-row or per-field errors
	// reported; FirstError is the first error of the earliest batch that had one.
	Rejected   int64
	RowErrors  int64
	FirstError string
	// Batches counts acknowledged batches; Duplicates those the server already held.
	Batches    int
	Duplicates int
	// Retries counts attempts that failed with a retryable error and were repeated.
	Retries int
	// Bytes is the NDJSON payload sent, counting each batch once.
	Bytes int64
	// Elapsed is the wall time of the load.
	Elapsed time.Duration
	// Leaves counts acknowledged rows per leaf id as reported by the server (at most
	// 1024 entries; the rest are summed under "(other)").
	Leaves map[string]int64
}

// RowsPerSec returns the acknowledged rows per second of wall time.
func (s LoadStats) RowsPerSec() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Rows) / s.Elapsed.Seconds()
}

// Load generates cfg's events and posts them to client's POST /v1/ingest/{table} (an
// aggregator, or a single leaf) as NDJSON batches of opts.BatchRows rows, each with a
// batch id. A batch that fails with 429, 502, 503, 504 or a transport error is sent
// again with the same id after an exponential backoff (50ms doubling to 2s, jittered),
// up to opts.MaxAttempts times; any other error stops the load. Load returns the
// totals so far together with the first error, or ctx's error when it is cancelled.
func Load(ctx context.Context, client *api.Client, table string, cfg GenConfig, opts LoadOptions) (LoadStats, error) {
	if client == nil {
		return LoadStats{}, errors.New("cannot load: nil client")
	}
	if table == "" {
		return LoadStats{}, errors.New("cannot load: empty table name")
	}
	if err := cfg.Validate(); err != nil {
		return LoadStats{}, fmt.Errorf("cannot load: %w", err)
	}
	for _, o := range []struct {
		name  string
		value int64
	}{
		{"BatchRows", int64(opts.BatchRows)},
		{"Concurrency", int64(opts.Concurrency)},
		{"MaxAttempts", int64(opts.MaxAttempts)},
		{"ProgressEvery", int64(opts.ProgressEvery)},
	} {
		if o.value < 0 {
			return LoadStats{}, fmt.Errorf("cannot load: option %s is negative (%d)", o.name, o.value)
		}
	}
	if opts.BatchRows == 0 {
		opts.BatchRows = DefaultBatchRows
	}
	if opts.Concurrency == 0 {
		opts.Concurrency = DefaultConcurrency
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.ProgressEvery == 0 {
		opts.ProgressEvery = time.Second
	}
	g := NewGenerator(cfg)
	cfg = g.Config()
	if opts.BatchIDPrefix == "" {
		opts.BatchIDPrefix = fmt.Sprintf("gen-%x-%d-%d-%d-%d", cfg.Seed, cfg.End.Unix(), int64(cfg.Span/time.Second), cfg.Rows, opts.BatchRows)
	}

	l := &loader{
		client: client,
		table:  table,
		opts:   opts,
		start:  time.Now(),
		total:  int64(cfg.Rows),
		stats:  LoadStats{Leaves: make(map[string]int64)},
	}
	stopProgress := l.startProgress()
	err := l.run(ctx, g)
	stopProgress()

	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.stats
	s.Elapsed = time.Since(l.start)
	if opts.Progress != nil {
		fmt.Fprintf(opts.Progress, "loaded %d rows into %s in %.1fs (%s rows/s): %d batches, %d duplicates, %d retries, %d rejected\n",
			s.Rows, table, s.Elapsed.Seconds(), humanCount(s.RowsPerSec()), s.Batches, s.Duplicates, s.Retries, s.Rejected)
	}
	return s, err
}

// batch is one generated ingest request. Its buffer is reused once it is sent.
type batch struct {
	index int
	rows  int
	data  []byte
}

type loader struct {
	client *api.Client
	table  string
	opts   LoadOptions
	start  time.Time
	total  int64

	acked atomic.Int64 // rows acknowledged, for progress

	mu            sync.Mutex
	stats         LoadStats
	firstErrBatch int // batch of stats.FirstError
}

// run generates batches into opts.Concurrency reusable buffers and sends them with as
// many workers. The generator only fills a buffer a worker has handed back, so memory
// holds at most Concurrency batches.
func (l *loader) run(ctx context.Context, g *Generator) error {
	eg, ctx := errgroup.WithContext(ctx)
	free := make(chan *batch, l.opts.Concurrency)
	for range l.opts.Concurrency {
		free <- &batch{}
	}
	work := make(chan *batch)

	eg.Go(func() error {
		defer close(work)
		var e Event
		for i := 0; g.Remaining() > 0; i++ {
			var b *batch
			select {
			case b = <-free:
			case <-ctx.Done():
				return ctx.Err()
			}
			b.index, b.rows, b.data = i, 0, b.data[:0]
			for b.rows < l.opts.BatchRows && g.Next(&e) {
				b.data = AppendNDJSON(b.data, &e)
				b.rows++
			}
			select {
			case work <- b:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return nil
	})
	for range l.opts.Concurrency {
		eg.Go(func() error {
			for b := range work {
				if err := l.send(ctx, b); err != nil {
					return err
				}
				free <- b
			}
			return nil
		})
	}
	return eg.Wait()
}

// send posts one batch, retrying what may succeed later.
func (l *loader) send(ctx context.Context, b *batch) error {
	id := fmt.Sprintf("%s-%d", l.opts.BatchIDPrefix, b.index)
	delay := retryBaseDelay
	for attempt := 1; ; attempt++ {
		res, err := l.client.Ingest(ctx, l.table, bytes.NewReader(b.data), api.ContentTypeNDJSON, id)
		if err == nil {
			l.record(b, res)
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !retryable(err) {
			return fmt.Errorf("cannot load batch %s (%d rows): %w", id, b.rows, err)
		}
		if attempt >= l.opts.MaxAttempts {
			return fmt.Errorf("cannot load batch %s (%d rows): gave up after %d attempts: %w", id, b.rows, attempt, err)
		}
		l.mu.Lock()
		l.stats.Retries++
		l.mu.Unlock()
		// Full jitter in [delay/2, delay) keeps retrying writers from moving in step.
		wait := delay/2 + rand.N(delay/2)
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
		delay = min(2*delay, retryMaxDelay)
	}
}

// retryable reports whether an ingest error may go away by itself: the server is
// overloaded or draining, a gateway could not reach a leaf, or the connection failed.
func retryable(err error) bool {
	var ae *api.Error
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusTooManyRequests, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
			return true
		}
		return false
	}
	// Anything that is not an HTTP answer is a transport failure (refused, reset, EOF).
	return !errors.Is(err, api.ErrTooLarge)
}

func (l *loader) record(b *batch, res *api.IngestResult) {
	rows := int64(res.Accepted)
	if res.Duplicate && rows == 0 {
		// The server held this batch already; its rows are stored.
		rows = int64(b.rows - res.Rejected)
	}
	l.acked.Add(rows)

	l.mu.Lock()
	defer l.mu.Unlock()
	s := &l.stats
	s.Rows += rows
	s.Rejected += int64(res.Rejected)
	s.RowErrors += int64(len(res.Errors))
	if res.ErrorsCut && len(res.Errors) == 0 {
		s.RowErrors++
	}
	if len(res.Errors) > 0 && (s.FirstError == "" || b.index < l.firstErrBatch) {
		l.firstErrBatch = b.index
		re := res.Errors[0]
		s.FirstError = fmt.Sprintf("batch %d line %d", b.index, re.Line)
		if re.Field != "" {
			s.FirstError += " field " + re.Field
		}
		s.FirstError += ": " + re.Reason
	}
	s.Batches++
	if res.Duplicate {
		s.Duplicates++
	}
	s.Bytes += int64(len(b.data))
	leaf := res.Leaf
	if _, ok := s.Leaves[leaf]; !ok && len(s.Leaves) >= maxLeafEntries {
		leaf = otherLeaves
	}
	s.Leaves[leaf] += rows
}

// startProgress prints a progress line every opts.ProgressEvery until the returned
// function is called; that function returns once the printer has stopped.
func (l *loader) startProgress() (stop func()) {
	if l.opts.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(l.opts.ProgressEvery)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				n := l.acked.Load()
				rate := float64(n) / time.Since(l.start).Seconds()
				pct := 100.0
				if l.total > 0 {
					pct = 100 * float64(n) / float64(l.total)
				}
				fmt.Fprintf(l.opts.Progress, "loaded %d/%d rows (%.0f%%), %s rows/s\n", n, l.total, pct, humanCount(rate))
			}
		}
	}()
	return func() {
		close(done)
		<-stopped
	}
}

// humanCount formats a rate like 1.2M or 830k.
func humanCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}
