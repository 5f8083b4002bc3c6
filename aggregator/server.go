package aggregator

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/internal/auth"
	"github.com/reef-db/reef/query/agg"
)

// Config configures an aggregator. Zero fields take the defaults noted.
type Config struct {
	// Children are the base URLs of the leaves or child aggregators; an entry
	// dns+http://NAME:PORT stands for every address NAME resolves to.
	Children []string
	// ClusterFile, if set, lists more children, one URL per line; Reload re-reads
	// it.
	ClusterFile string
	// DNSInterval is how often dns+ children are re-resolved (default 10s).
	DNSInterval time.Duration
	// Token, if set, is sent as a bearer token to the children. Default:
	// Tokens.Peer.
	Token string
	// Tokens are the bearer tokens this aggregator's API asks for (internal/auth).
	// Default: none, the API is open. docs/access.md has the rules.
	Tokens auth.Tokens
	// TLS, if set, is the client config for https:// children (e.g. trusting the CA
	// of their self-signed certificates).
	TLS *tls.Config
	// QueryTimeout is the default query deadline (default 5s); a query may ask for
	// its own with timeout_ms.
	QueryTimeout time.Duration
	// MinCoverage is the default minimum coverage percent (default 0): an answer
	// covering less is an error.
	MinCoverage float64
	// HealthInterval is how often children's stats are polled (default 1s) and
	// HealthTimeout how long one poll may take (default 500ms).
	HealthInterval time.Duration
	HealthTimeout  time.Duration
	// MaxBodyBytes bounds one ingest request body (default 256 MiB); BatchBytes
	// bounds one batch sent to a leaf (default 4 MiB).
	MaxBodyBytes int64
	BatchBytes   int
	// IngestTimeout bounds how long a writer waits for its rows to be stored
	// (default 30s).
	IngestTimeout time.Duration
	// ExcludeFor is how long a leaf that answered a batch with 503 or another 5xx
	// (draining, failing) is not routed to (default 2s); ExcludeBusyFor the same
	// after a 429 (busy or full; default 100ms).
	ExcludeFor     time.Duration
	ExcludeBusyFor time.Duration
	// MaxConcurrentQueries bounds queries in flight (default 64); more get 429.
	MaxConcurrentQueries int
	// MaxConcurrentIngest bounds ingest requests in flight (default 64); more get
	// 429 with Retry-After. Each holds at most one batch (BatchBytes, or one Arrow
	// body of up to MaxArrowBytes).
	MaxConcurrentIngest int
	// MaxArrowBytes bounds an Arrow IPC ingest body, which goes whole to one leaf
	// (default 64 MiB, the leaf's default body limit).
	MaxArrowBytes int64
	// MaxQueryTimeout caps the deadline a query may ask for with timeout_ms
	// (default 5m).
	MaxQueryTimeout time.Duration
	// MaxResultRows bounds the rows of a result (default 100,000); past it the
	// answer is cut and flagged truncated.
	MaxResultRows int
	// MaxGroups bounds the groups held while merging the children's partials
	// (default agg.DefaultMaxGroups); past it new groups are dropped and the
	// answer is flagged truncated.
	MaxGroups int
	// RecentBatches is how many batch ids are remembered for routing retries to
	// the leaf that holds them (default 100,000).
	RecentBatches int
	Logger        *slog.Logger
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.QueryTimeout, 5*time.Second)
	def(&c.HealthInterval, time.Second)
	def(&c.HealthTimeout, 500*time.Millisecond)
	def(&c.IngestTimeout, 30*time.Second)
	def(&c.ExcludeFor, 2*time.Second)
	def(&c.ExcludeBusyFor, 100*time.Millisecond)
	def(&c.DNSInterval, 10*time.Second)
	if c.MaxBodyBytes <= 0 {
		c.MaxBodyBytes = 256 << 20
	}
	if c.BatchBytes <= 0 {
		c.BatchBytes = 4 << 20
	}
	if c.MaxConcurrentQueries <= 0 {
		c.MaxConcurrentQueries = 64
	}
	if c.MaxConcurrentIngest <= 0 {
		c.MaxConcurrentIngest = 64
	}
	if c.MaxArrowBytes <= 0 {
		c.MaxArrowBytes = 64 << 20
	}
	def(&c.MaxQueryTimeout, 5*time.Minute)
	if c.MaxResultRows <= 0 {
		c.MaxResultRows = 100_000
	}
	if c.MaxGroups <= 0 {
		c.MaxGroups = agg.DefaultMaxGroups
	}
	if c.Token == "" {
		c.Token = c.Tokens.Peer
	}
	if c.RecentBatches <= 0 {
		c.RecentBatches = 100_000
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Server is an aggregator.
type Server struct {
	cfg       Config
	log       *slog.Logger
	members   *members
	recent    *recentBatches
	querySem  chan struct{}
	ingestSem chan struct{}
	guard     *auth.Guard
	metrics   *metrics
	reg       *prometheus.Registry

	stop     chan struct{}
	stopOnce sync.Once
	stopped  atomic.Bool
	wg       sync.WaitGroup
}

// New returns an aggregator over cfg.Children. Call Start to begin health checks.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	guard, err := auth.NewGuard(auth.Aggregator, cfg.Tokens)
	if err != nil {
		return nil, fmt.Errorf("invalid aggregator config: %w", err)
	}
	if len(cfg.Children) == 0 && cfg.ClusterFile == "" {
		return nil, errors.New("an aggregator needs children: give --leaves or --cluster-file")
	}
	seen := map[string]bool{}
	for _, u := range cfg.Children {
		if seen[u] {
			return nil, fmt.Errorf("child %s is listed twice", u)
		}
		if err := checkChildURL(u); err != nil {
			return nil, err
		}
		seen[u] = true
	}
	reg := prometheus.NewRegistry()
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger,
		members:   &members{tls: cfg.TLS},
		recent:    newRecentBatches(cfg.RecentBatches),
		querySem:  make(chan struct{}, cfg.MaxConcurrentQueries),
		ingestSem: make(chan struct{}, cfg.MaxConcurrentIngest),
		guard:     guard,
		metrics:   newMetrics(reg),
		reg:       reg,
		stop:      make(chan struct{}),
	}
	if err := s.Reload(context.Background()); err != nil && len(s.members.list()) == 0 {
		return nil, fmt.Errorf("cannot set up children: %w", err)
	}
	return s, nil
}

// Start polls the children once (bounded by HealthTimeout) and then keeps polling
// them in the background until Close.
func (s *Server) Start(ctx context.Context) {
	s.members.checkAll(ctx, s.cfg.HealthTimeout, false)
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(s.cfg.HealthInterval)
		defer t.Stop()
		dns := time.NewTicker(s.cfg.DNSInterval)
		defer dns.Stop()
		for {
			select {
			case <-s.stop:
				return
			case <-dns.C:
				if s.usesDNS() {
					if err := s.Reload(ctx); err != nil {
						s.log.Warn("cannot refresh children", "err", err)
					}
				}
			case <-t.C:
				s.members.checkAll(ctx, s.cfg.HealthTimeout, false)
				up := 0
				for _, c := range s.members.list() {
					if c.healthy() {
						up++
					}
				}
				s.metrics.childrenUp.Set(float64(up))
			}
		}
	}()
}

// Close stops background work. In-flight requests are the HTTP server's to drain.
func (s *Server) Close() {
	s.stopOnce.Do(func() {
		s.stopped.Store(true)
		close(s.stop)
	})
	s.wg.Wait()
}

func (s *Server) usesDNS() bool {
	for _, c := range s.cfg.Children {
		if strings.HasPrefix(c, dnsPrefix) {
			return true
		}
	}
	return s.cfg.ClusterFile != "" // a cluster file may hold dns+ entries too
}

func (s *Server) closing() bool { return s.stopped.Load() }

func (s *Server) acquireQuery(ctx context.Context) bool {
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case s.querySem <- struct{}{}:
		return true
	case <-t.C:
		return false
	case <-ctx.Done():
		return false
	}
}

func (s *Server) releaseQuery() { <-s.querySem }

// Handler returns the aggregator's HTTP routes, behind the token guard.
func (s *Server) Handler() http.Handler { return s.guard.Wrap(s.routes()) }

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/ingest/{table}", func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.ingestSem <- struct{}{}:
			defer func() { <-s.ingestSem }()
		default:
			w.Header().Set("Retry-After", "1")
			writeError(w, http.StatusTooManyRequests, fmt.Errorf("too many concurrent ingest requests (limit %d); retry shortly", s.cfg.MaxConcurrentIngest))
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.IngestTimeout)
		defer cancel()
		s.handleIngest(w, r.WithContext(ctx))
	})
	mux.HandleFunc("POST /v1/sql", s.handleSQL)
	mux.HandleFunc("GET /v1/sql", s.handleSQL)
	mux.HandleFunc("POST /v1/partial", s.handlePartial)
	mux.HandleFunc("GET /v1/stats", s.handleStats)
	mux.HandleFunc("GET /v1/tables", s.handleTables)
	mux.HandleFunc("GET /v1/tables/{table}", s.handleTable)
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if s.closing() {
			http.Error(w, "shutting down", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}))
	return mux
}

// stats sums the children's last stats: what this aggregator reports to a parent.
func (s *Server) stats() api.Stats {
	out := api.Stats{LeafID: "aggregator", Ready: !s.closing(), Tables: map[string]api.TableStats{}}
	for _, c := range s.members.list() {
		up, st := c.snapshot()
		out.Leaves += max(st.Leaves, 1)
		if !up {
			// Its rows still count for coverage estimates, but not its free memory.
			st.FreeBytes = 0
		}
		out.Rows += st.Rows
		out.Bytes += st.Bytes
		out.MemoryLimit += st.MemoryLimit
		out.FreeBytes += st.FreeBytes
		for name, ts := range st.Tables {
			out.Tables[name] = mergeTableStats(out.Tables[name], ts)
		}
	}
	return out
}

func mergeTableStats(a, b api.TableStats) api.TableStats {
	if a.Name == "" {
		b.Columns = append([]api.ColumnInfo(nil), b.Columns...)
		return b
	}
	// MinTime > MaxTime marks a time range not reported yet (see noteIngest).
	aKnown, bKnown := a.Rows > 0 && a.MinTime <= a.MaxTime, b.Rows > 0 && b.MinTime <= b.MaxTime
	switch {
	case aKnown && bKnown:
		a.MinTime, a.MaxTime = min(a.MinTime, b.MinTime), max(a.MaxTime, b.MaxTime)
	case bKnown:
		a.MinTime, a.MaxTime = b.MinTime, b.MaxTime
	}
	a.Rows += b.Rows
	a.Bytes += b.Bytes
	a.Blocks += b.Blocks
	for _, col := range b.Columns {
		found := false
		for i, have := range a.Columns {
			if have.Name == col.Name {
				found = true
				if have.Type != col.Type && (have.Type == "int" || have.Type == "float") && (col.Type == "int" || col.Type == "float") {
					a.Columns[i].Type = "float"
				}
			}
		}
		if !found {
			a.Columns = append(a.Columns, col)
		}
	}
	return a
}

func (s *Server) handleStats(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("refresh") == "1" {
		// A parent validating a query wants current schemas: ask our children
		// (bounded by our health timeout; a slow child keeps its last stats).
		s.members.checkAll(r.Context(), s.cfg.HealthTimeout, true)
	}
	writeJSON(w, http.StatusOK, s.stats())
}

func (s *Server) handleTables(w http.ResponseWriter, r *http.Request) {
	st := s.stats()
	tables := make([]api.TableStats, 0, len(st.Tables))
	for _, t := range st.Tables {
		tables = append(tables, t)
	}
	sort.Slice(tables, func(i, j int) bool { return tables[i].Name < tables[j].Name })
	writeJSON(w, http.StatusOK, map[string]any{"tables": tables})
}

func (s *Server) handleTable(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("table")
	if _, ok := s.schema(name); !ok {
		s.members.checkAll(r.Context(), s.cfg.HealthTimeout, true)
	}
	t, ok := s.stats().Tables[name]
	if !ok {
		writeError(w, http.StatusNotFound, fmt.Errorf("unknown table %q", name))
		return
	}
	writeJSON(w, http.StatusOK, t)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, err error) {
	writeJSON(w, status, &api.Error{Message: err.Error()})
}
