package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"golang.org/x/sync/errgroup"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/testbench"
)

// Load defaults.
const (
	DefaultBatchRows      = 1000
	DefaultConcurrency    = 4
	DefaultRequestTimeout = 30 * time.Second
	DefaultDrainTimeout   = time.Minute
	// DefaultPoolRows is how many distinct events a load encodes before it starts
	// when it does not know how many rows it will send.
	DefaultPoolRows = 200_000

	retryBase = 50 * time.Millisecond
	retryMax  = time.Second
)

// LoadConfig describes a bounded ingest load. Client, Table and Ledger are required,
// and one of Duration, Rows and Stop.
type LoadConfig struct {
	// Client is the aggregator (or leaf) the batches are posted to.
	Client *api.Client
	// Table receives the rows.
	Table string
	// Ledger numbers the batches and records which were acknowledged.
	Ledger *Ledger

	// Rate is the target in rows per second; 0 sends as fast as the cluster
	// acknowledges. Batch n is due at start + n·BatchRows/Rate: a load that falls
	// behind sends its late batches at once, up to Concurrency in flight.
	Rate float64
	// Duration ends the sending of new batches; Rows ends it after that many rows;
	// a receive from Stop ends it too. Batches in flight then still finish.
	Duration time.Duration
	Rows     int64
	Stop     <-chan struct{}
	// BatchRows is the rows per ingest request (default DefaultBatchRows), and
	// Concurrency the requests in flight (default DefaultConcurrency).
	BatchRows   int
	Concurrency int

	// Seed selects the generated events (default 1); PoolRows how many distinct
	// events are encoded before the load starts and then sent round and round
	// (default DefaultPoolRows, or fewer when Rows or Rate·Duration is smaller; at
	// most 1,048,576). Their times span the hour before the load starts.
	Seed     uint64
	PoolRows int

	// RequestTimeout bounds one attempt (default DefaultRequestTimeout). A batch
	// that failed with 429, 5xx, a timeout or a transport error is sent again with
	// the same batch id, with a backoff of 50 ms doubling to 1 s, until it is
	// acknowledged or DrainTimeout (default DefaultDrainTimeout) has passed since
	// sending ended; it then stays unacknowledged in the Ledger.
	RequestTimeout time.Duration
	DrainTimeout   time.Duration

	// Timeline, when not nil, records every acknowledged batch and every retry.
	Timeline *Timeline
	// FirstAck, when not nil, is closed when the first batch is acknowledged.
	FirstAck chan<- struct{}
}

// LoadResult sums up one load.
type LoadResult struct {
	Table       string  `json:"table"`
	TargetRate  float64 `json:"target_rows_per_s"` // 0: as fast as possible
	BatchRows   int     `json:"batch_rows"`
	Concurrency int     `json:"concurrency"`

	// Batches were sent; AckedBatches acknowledged with AcceptedRows accepted rows;
	// Unacked gave up after DrainTimeout or were in flight when the load was
	// cancelled. RejectedRows were refused by the cluster (bad rows, never for
	// generated data).
	Batches      int64 `json:"batches"`
	AckedBatches int64 `json:"acked_batches"`
	AcceptedRows int64 `json:"accepted_rows"`
	RejectedRows int64 `json:"rejected_rows"`
	Unacked      int64 `json:"unacked_batches"`
	// Duplicates counts answers saying the cluster already held the batch (a retry
	// of a batch whose first answer was lost); Retries the attempts repeated.
	Duplicates int64 `json:"duplicates"`
	Retries    int64 `json:"retries"`
	// Bytes is the NDJSON payload of the acknowledged batches.
	Bytes int64 `json:"bytes"`

	ElapsedS   float64 `json:"elapsed_s"`
	RowsPerSec float64 `json:"rows_per_s"`
	MBPerSec   float64 `json:"mb_per_s"`
	// Latency of the acknowledged attempts, in milliseconds.
	P50MS float64 `json:"p50_ms"`
	P99MS float64 `json:"p99_ms"`
	MaxMS float64 `json:"max_ms"`

	// FirstError is the first error that stopped a batch, if any.
	FirstError string `json:"first_error,omitempty"`
}

// RunLoad sends the load cfg describes and waits until every batch is acknowledged
// or given up. It returns the result so far with the first error when a batch was
// refused for good (a 4xx other than 408 and 429: the load is wrong, retrying will
// not help) or ctx was cancelled.
func RunLoad(ctx context.Context, cfg LoadConfig) (*LoadResult, error) {
	l, err := newLoader(cfg)
	if err != nil {
		return nil, err
	}
	return l.load(ctx)
}

// newLoader checks cfg and encodes the rows of a load.
func newLoader(cfg LoadConfig) (*loader, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	pool, err := newRowPool(testbench.GenConfig{Seed: cfg.Seed, Rows: cfg.PoolRows, End: time.Now(), Span: time.Hour})
	if err != nil {
		return nil, fmt.Errorf("cannot generate the load's rows: %w", err)
	}
	return &loader{cfg: cfg, pool: pool, lat: newSketch(),
		res: LoadResult{Table: cfg.Table, TargetRate: cfg.Rate, BatchRows: cfg.BatchRows, Concurrency: cfg.Concurrency}}, nil
}

// load sends the load from now on and sums it up.
func (l *loader) load(ctx context.Context) (*LoadResult, error) {
	start := time.Now()
	err := l.run(ctx, start)
	r := &l.res
	r.ElapsedS = round3(time.Since(start).Seconds())
	if r.ElapsedS > 0 {
		r.RowsPerSec = round3(float64(r.AcceptedRows) / r.ElapsedS)
		r.MBPerSec = round3(float64(r.Bytes) / 1e6 / r.ElapsedS)
	}
	r.P50MS, r.P99MS, r.MaxMS = sketchMS(l.lat)
	return r, err
}

func (cfg LoadConfig) resolve() (LoadConfig, error) {
	switch {
	case cfg.Client == nil:
		return cfg, errors.New("cannot load: no client")
	case cfg.Ledger == nil:
		return cfg, errors.New("cannot load: no ledger")
	case cfg.Duration <= 0 && cfg.Rows <= 0 && cfg.Stop == nil:
		return cfg, errors.New("cannot load: no duration, row count or stop channel: it would never end")
	case cfg.Rate < 0 || cfg.Duration < 0 || cfg.Rows < 0 || cfg.BatchRows < 0 || cfg.Concurrency < 0 ||
		cfg.PoolRows < 0 || cfg.RequestTimeout < 0 || cfg.DrainTimeout < 0:
		return cfg, fmt.Errorf("cannot load: negative setting in %+v", cfg)
	}
	if err := api.ValidTableName(cfg.Table); err != nil {
		return cfg, fmt.Errorf("cannot load: %w", err)
	}
	if cfg.BatchRows == 0 {
		cfg.BatchRows = DefaultBatchRows
	}
	if cfg.Concurrency == 0 {
		cfg.Concurrency = DefaultConcurrency
	}
	if cfg.Seed == 0 {
		cfg.Seed = 1
	}
	if cfg.PoolRows == 0 {
		// No more distinct rows than the load will send, if that is known.
		cfg.PoolRows = DefaultPoolRows
		if cfg.Rows > 0 {
			cfg.PoolRows = int(min(cfg.Rows, DefaultPoolRows))
		}
		if cfg.Rate > 0 && cfg.Duration > 0 {
			cfg.PoolRows = int(min(float64(cfg.PoolRows), cfg.Rate*cfg.Duration.Seconds()+float64(cfg.BatchRows)))
		}
	}
	cfg.PoolRows = min(cfg.PoolRows, maxPoolRows)
	if cfg.RequestTimeout == 0 {
		cfg.RequestTimeout = DefaultRequestTimeout
	}
	if cfg.DrainTimeout == 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	return cfg, nil
}

// loader is one running load.
type loader struct {
	cfg  LoadConfig
	pool *rowPool

	// drainBy is the deadline of retries, unix nanoseconds; 0 while sending.
	drainBy  atomic.Int64
	firstAck sync.Once

	mu  sync.Mutex // guards res and lat
	res LoadResult
	lat *ddsketch.DDSketch
}

// job is one batch to send.
type job struct {
	rows int
	pos  int   // first pool line
	n    int64 // batch number, given by the sender that takes the job
}

// run schedules batches at the target rate and sends them with Concurrency workers.
func (l *loader) run(ctx context.Context, start time.Time) error {
	eg, ctx := errgroup.WithContext(ctx)
	work := make(chan job)
	eg.Go(func() error {
		defer close(work)
		defer l.drainBy.Store(time.Now().Add(l.cfg.DrainTimeout).UnixNano())
		return l.schedule(ctx, start, work)
	})
	for range l.cfg.Concurrency {
		eg.Go(func() error {
			var buf []byte
			for j := range work {
				n, err := l.cfg.Ledger.next(j.rows)
				if err != nil {
					return err
				}
				j.n = n
				l.mu.Lock()
				l.res.Batches++
				l.mu.Unlock()
				buf = l.pool.appendBatch(buf[:0], j.pos, j.rows, j.n)
				if err := l.send(ctx, j, buf); err != nil {
					return err
				}
			}
			return nil
		})
	}
	return eg.Wait()
}

// schedule hands out batches at their due times until the load's end.
func (l *loader) schedule(ctx context.Context, start time.Time, work chan<- job) error {
	cfg := l.cfg
	var end <-chan time.Time
	if cfg.Duration > 0 {
		t := time.NewTimer(time.Until(start.Add(cfg.Duration)))
		defer t.Stop()
		end = t.C
	}
	var sent int64 // rows handed out
	pos := 0
	for k := 0; cfg.Rows == 0 || sent < cfg.Rows; k++ {
		rows := cfg.BatchRows
		if cfg.Rows > 0 {
			rows = int(min(int64(rows), cfg.Rows-sent))
		}
		if cfg.Rate > 0 {
			due := start.Add(time.Duration(float64(sent) / cfg.Rate * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-t.C:
				case <-end:
					t.Stop()
					return nil
				case <-cfg.Stop:
					t.Stop()
					return nil
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				}
			}
		}
		select {
		case <-end:
			return nil
		case <-cfg.Stop:
			return nil
		default:
		}
		// Wait for a free sender; the load may end meanwhile (every sender retrying).
		select {
		case work <- job{rows: rows, pos: pos}:
		case <-end:
			return nil
		case <-cfg.Stop:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
		sent += int64(rows)
		pos = (pos + rows) % l.pool.rows()
	}
	return nil
}

// send posts one batch until it is acknowledged or given up.
func (l *loader) send(ctx context.Context, j job, body []byte) error {
	id := l.cfg.Ledger.ID(j.n)
	delay := retryBase
	for {
		actx, cancel := context.WithTimeout(ctx, l.cfg.RequestTimeout)
		t0 := time.Now()
		res, err := l.cfg.Client.Ingest(actx, l.cfg.Table, bytes.NewReader(body), api.ContentTypeNDJSON, id)
		cancel()
		now := time.Now()
		if err == nil {
			l.record(j, res, len(body), now, now.Sub(t0))
			return nil
		}
		if ctx.Err() != nil {
			l.giveUp("")
			return ctx.Err()
		}
		if !retryable(err) {
			msg := fmt.Sprintf("batch %s (%d rows): %v", id, j.rows, err)
			l.giveUp(msg)
			if l.cfg.Timeline != nil {
				l.cfg.Timeline.IngestError(now)
			}
			return fmt.Errorf("cannot load %s: %s", l.cfg.Table, msg)
		}
		if by := l.drainBy.Load(); by != 0 && now.UnixNano() > by {
			l.giveUp(fmt.Sprintf("batch %s (%d rows): not acknowledged within %v of the end of the load: %v", id, j.rows, l.cfg.DrainTimeout, err))
			if l.cfg.Timeline != nil {
				l.cfg.Timeline.IngestError(now)
			}
			return nil
		}
		l.mu.Lock()
		l.res.Retries++
		l.mu.Unlock()
		if l.cfg.Timeline != nil {
			l.cfg.Timeline.IngestRetry(now)
		}
		// Full jitter in [delay/2, delay) keeps retrying senders from moving in step.
		t := time.NewTimer(delay/2 + rand.N(delay/2))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			l.giveUp("")
			return ctx.Err()
		}
		delay = min(2*delay, retryMax)
	}
}

// retryable reports whether an ingest error may go away by itself: the cluster is
// overloaded, draining, restarting a leaf, or the connection failed. Retrying with
// the same batch id never stores a batch twice.
func retryable(err error) bool {
	var ae *api.Error
	if errors.As(err, &ae) {
		switch ae.Status {
		case http.StatusRequestTimeout, http.StatusTooManyRequests:
			return true
		}
		return ae.Status >= 500
	}
	return !errors.Is(err, api.ErrTooLarge)
}

func (l *loader) record(j job, res *api.IngestResult, size int, at time.Time, took time.Duration) {
	accepted := res.Accepted
	if res.Duplicate && accepted == 0 {
		// The cluster held this batch already; its rows are stored.
		accepted = j.rows - res.Rejected
	}
	l.cfg.Ledger.ack(j.n, accepted)
	if l.cfg.Timeline != nil {
		l.cfg.Timeline.Ingest(at, int64(accepted), int64(size), took)
	}
	if l.cfg.FirstAck != nil {
		l.firstAck.Do(func() { close(l.cfg.FirstAck) })
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	r := &l.res
	r.AckedBatches++
	r.AcceptedRows += int64(accepted)
	r.RejectedRows += int64(res.Rejected)
	r.Bytes += int64(size)
	if res.Duplicate {
		r.Duplicates++
	}
	if r.FirstError == "" && len(res.Errors) > 0 {
		r.FirstError = fmt.Sprintf("batch %s line %d: %s", res.BatchID, res.Errors[0].Line, res.Errors[0].Reason)
	}
	_ = l.lat.Add(max(took.Seconds(), 1e-9))
}

func (l *loader) giveUp(msg string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.res.Unacked++
	if l.res.FirstError == "" {
		l.res.FirstError = msg
	}
}

// sketchMS returns the median, p99 and maximum of a sketch of seconds in
// milliseconds (zeros when it is empty).
func sketchMS(s *ddsketch.DDSketch) (p50, p99, maxMS float64) {
	if s == nil || s.IsEmpty() {
		return 0, 0, 0
	}
	q, err := s.GetValuesAtQuantiles([]float64{0.5, 0.99})
	if err != nil {
		return 0, 0, 0
	}
	m, _ := s.GetMaxValue()
	return round3(q[0] * 1000), round3(q[1] * 1000), round3(m * 1000)
}
