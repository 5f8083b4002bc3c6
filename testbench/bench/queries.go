package bench

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/DataDog/sketches-go/ddsketch"
	"golang.org/x/sync/errgroup"

	"github.com/reef-db/reef/api"
)

// Query load defaults.
const (
	DefaultQueryClients = 2
	DefaultQueryTimeout = 2 * time.Second
	// queryGrace is how much longer than its own deadline a client waits for an
	// answer before it gives up on the aggregator.
	queryGrace = 5 * time.Second
	// maxPerQuery bounds the queries of a QueryConfig.
	maxPerQuery = 64
)

// DefaultQueries are the queries a query load runs when given none, on the columns of
// the generated events; {table} stands for the table. They cover a plain count, a
// group-by with a percentile, a filtered top-k and a time series.
var DefaultQueries = []string{
	"SELECT count(*) FROM {table}",
	"SELECT service, count(*), avg(latency_ms), p99(latency_ms) FROM {table} GROUP BY service",
	"SELECT endpoint, count(*) AS n FROM {table} WHERE status = 500 GROUP BY endpoint ORDER BY n DESC LIMIT 10",
	"SELECT time(1m), count(*), p99(latency_ms) FROM {table} WHERE time > now() - 30m GROUP BY time(1m)",
}

// QueryConfig describes a query load: Clients clients, each running the queries in
// turn, one at a time, until Duration has passed or Stop is closed. Client and Table
// are required, and one of Duration and Stop.
type QueryConfig struct {
	Client *api.Client
	Table  string
	// Queries are the SQL statements, {table} standing for Table (default
	// DefaultQueries; at most 64).
	Queries []string
	// Clients is the number of concurrent clients (default DefaultQueryClients).
	Clients int
	// Interval, when set, is the pause of each client between two queries; 0 runs
	// them back to back.
	Interval time.Duration
	// Timeout is the deadline each query asks for (timeout_ms, default
	// DefaultQueryTimeout): a leaf that has not answered by then is missing from the
	// answer's coverage.
	Timeout  time.Duration
	Duration time.Duration
	Stop     <-chan struct{}
	// Timeline, when not nil, records every query.
	Timeline *Timeline
}

// QueryResult sums up a query load. Latencies are the client's wall time in
// milliseconds over the queries that answered (partial answers included); coverage is
// the answers' coverage percent.
type QueryResult struct {
	Clients  int     `json:"clients"`
	Queries  int64   `json:"queries"`
	Errors   int64   `json:"errors"`
	Partial  int64   `json:"partial"`
	ElapsedS float64 `json:"elapsed_s"`
	QPS      float64 `json:"qps"`

	P50MS  float64 `json:"p50_ms"`
	P95MS  float64 `json:"p95_ms"`
	P99MS  float64 `json:"p99_ms"`
	MaxMS  float64 `json:"max_ms"`
	MeanMS float64 `json:"mean_ms"`

	CoverageMin  float64 `json:"coverage_min"`
	CoverageMean float64 `json:"coverage_mean"`

	// PerQuery has the same numbers for each statement.
	PerQuery []QueryStats `json:"per_query"`
	// FirstError is the first failed query's error.
	FirstError string `json:"first_error,omitempty"`
}

// QueryStats are one statement's numbers in a query load.
type QueryStats struct {
	SQL     string  `json:"sql"`
	Queries int64   `json:"queries"`
	Errors  int64   `json:"errors"`
	P50MS   float64 `json:"p50_ms"`
	P99MS   float64 `json:"p99_ms"`
	MaxMS   float64 `json:"max_ms"`
}

// RunQueries runs the query load cfg describes. A failed query is counted, not
// fatal: the load goes on until its end. It returns ctx's error if ctx ends first,
// with the result so far.
func RunQueries(ctx context.Context, cfg QueryConfig) (*QueryResult, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	q := &queryLoad{cfg: cfg, all: newSketch(), covMin: math.Inf(1)}
	for _, s := range cfg.Queries {
		q.per = append(q.per, &perQuery{stats: QueryStats{SQL: s}, lat: newSketch()})
	}
	start := time.Now()
	stop := make(chan struct{})
	go func() {
		var end <-chan time.Time
		if cfg.Duration > 0 {
			t := time.NewTimer(cfg.Duration)
			defer t.Stop()
			end = t.C
		}
		select {
		case <-end:
		case <-cfg.Stop:
		case <-ctx.Done():
		}
		close(stop)
	}()
	var eg errgroup.Group
	for c := range cfg.Clients {
		eg.Go(func() error { return q.client(ctx, c, stop) })
	}
	err = eg.Wait()
	<-stop
	return q.result(time.Since(start)), err
}

func (cfg QueryConfig) resolve() (QueryConfig, error) {
	switch {
	case cfg.Client == nil:
		return cfg, errors.New("cannot run queries: no client")
	case cfg.Duration <= 0 && cfg.Stop == nil:
		return cfg, errors.New("cannot run queries: no duration or stop channel: they would never end")
	case cfg.Clients < 0 || cfg.Interval < 0 || cfg.Timeout < 0:
		return cfg, fmt.Errorf("cannot run queries: negative setting in %+v", cfg)
	case len(cfg.Queries) > maxPerQuery:
		return cfg, fmt.Errorf("cannot run queries: %d statements, the limit is %d", len(cfg.Queries), maxPerQuery)
	}
	if err := api.ValidTableName(cfg.Table); err != nil {
		return cfg, fmt.Errorf("cannot run queries: %w", err)
	}
	if len(cfg.Queries) == 0 {
		cfg.Queries = DefaultQueries
	}
	qs := make([]string, len(cfg.Queries))
	for i, s := range cfg.Queries {
		qs[i] = strings.ReplaceAll(s, "{table}", cfg.Table)
	}
	cfg.Queries = qs
	if cfg.Clients == 0 {
		cfg.Clients = DefaultQueryClients
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultQueryTimeout
	}
	return cfg, nil
}

type queryLoad struct {
	cfg QueryConfig

	mu       sync.Mutex // guards everything below
	queries  int64
	errs     int64
	partial  int64
	all      *ddsketch.DDSketch
	sumS     float64
	maxS     float64
	covMin   float64
	covSum   float64
	covN     int64
	per      []*perQuery
	firstErr string
}

type perQuery struct {
	stats QueryStats
	lat   *ddsketch.DDSketch
}

// client runs the queries in turn, starting at its own offset so that the clients
// do not all run the same statement at once.
func (q *queryLoad) client(ctx context.Context, c int, stop <-chan struct{}) error {
	for k := c; ; k++ {
		select {
		case <-stop:
			return nil
		default:
		}
		i := k % len(q.cfg.Queries)
		qctx, cancel := context.WithTimeout(ctx, q.cfg.Timeout+queryGrace)
		t0 := time.Now()
		res, err := q.cfg.Client.SQL(qctx, api.QueryRequest{SQL: q.cfg.Queries[i], TimeoutMS: q.cfg.Timeout.Milliseconds()})
		cancel()
		now := time.Now()
		if ctx.Err() != nil {
			return ctx.Err()
		}
		q.record(i, res, err, now, now.Sub(t0))
		if q.cfg.Interval > 0 {
			t := time.NewTimer(q.cfg.Interval)
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
				return nil
			}
		}
	}
}

func (q *queryLoad) record(i int, res *api.QueryResult, err error, at time.Time, took time.Duration) {
	var cov float64
	partial := false
	if err == nil {
		cov, partial = res.Coverage.Percent, res.Partial
	}
	if q.cfg.Timeline != nil {
		q.cfg.Timeline.Query(at, took, cov, partial, err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.queries++
	p := q.per[i]
	p.stats.Queries++
	if err != nil {
		q.errs++
		p.stats.Errors++
		if q.firstErr == "" {
			q.firstErr = fmt.Sprintf("%s: %v", q.cfg.Queries[i], err)
		}
		return
	}
	s := max(took.Seconds(), 1e-9)
	_ = q.all.Add(s)
	_ = p.lat.Add(s)
	q.sumS += s
	q.maxS = max(q.maxS, s)
	if partial {
		q.partial++
	}
	q.covMin = min(q.covMin, cov)
	q.covSum += cov
	q.covN++
}

func (q *queryLoad) result(elapsed time.Duration) *QueryResult {
	q.mu.Lock()
	defer q.mu.Unlock()
	r := &QueryResult{
		Clients:    q.cfg.Clients,
		Queries:    q.queries,
		Errors:     q.errs,
		Partial:    q.partial,
		ElapsedS:   round3(elapsed.Seconds()),
		FirstError: q.firstErr,
	}
	if elapsed > 0 {
		r.QPS = round3(float64(q.queries) / elapsed.Seconds())
	}
	if !q.all.IsEmpty() {
		if qs, err := q.all.GetValuesAtQuantiles([]float64{0.5, 0.95, 0.99}); err == nil {
			r.P50MS, r.P95MS, r.P99MS = round3(qs[0]*1000), round3(qs[1]*1000), round3(qs[2]*1000)
		}
		r.MaxMS = round3(q.maxS * 1000)
		r.MeanMS = round3(q.sumS / float64(q.covN) * 1000)
	}
	if q.covN > 0 {
		r.CoverageMin = round3(q.covMin)
		r.CoverageMean = round3(q.covSum / float64(q.covN))
	}
	for _, p := range q.per {
		s := p.stats
		s.P50MS, s.P99MS, s.MaxMS = sketchMS(p.lat)
		r.PerQuery = append(r.PerQuery, s)
	}
	return r
}
