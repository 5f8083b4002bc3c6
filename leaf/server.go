package leaf

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/internal/auth"
)

// Server states, as /readyz reports them.
const (
	stateStarting int32 = iota // recovering data; not serving ingest or queries yet
	stateReady                 // serving
	stateDraining              // handing off: no new ingest, queries still answered
)

// Server is one leaf: its tables, its HTTP API and its background work (sealing
// open blocks by age, retention). Make one with New; serve it with Serve (or mount
// Handler); stop it with Close.
type Server struct {
	cfg     Config
	log     *slog.Logger
	store   *store
	batches *batchLog
	metrics *metrics
	handler http.Handler
	start   api.StartInfo
	persist // WAL, shm blocks, disk copies, start paths (persist.go)

	ingestSlots chan struct{} // one token per ingest request in flight
	slotWaiters atomic.Int64  // requests waiting for an ingest slot
	slotWait    time.Duration // tests: instead of slotWait
	querySlots  chan struct{} // one token per query in flight
	decoders    sync.Pool     // *decoder

	state atomic.Int32

	// Ingest requests in flight, so that a handoff can wait for them.
	flightMu sync.Mutex
	inFlight int
	idle     chan struct{} // closed when inFlight drops to 0 while draining

	handoffMu   sync.Mutex
	handoffDone chan struct{} // closed when a handoff completed

	stop      chan struct{}
	bg        sync.WaitGroup
	closeOnce sync.Once
}

// New starts a leaf: it checks cfg, recovers the leaf's data (recover.go: attach a
// handoff's blocks, or check shm blocks and replay the WAL after a crash, or load
// disk copies after a reboot), and starts the background work. The leaf is ready
// when New returns.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	guard, err := auth.NewGuard(auth.Leaf, cfg.Tokens)
	if err != nil {
		return nil, fmt.Errorf("invalid leaf config: %w", err)
	}
	began := time.Now()
	if cfg.DataDir != "" {
		if err := os.MkdirAll(cfg.DataDir, 0o755); err != nil {
			return nil, fmt.Errorf("cannot create leaf data directory: %w", err)
		}
	}
	s := &Server{
		cfg:         cfg,
		log:         cfg.Logger.With("leaf", cfg.ID),
		batches:     newBatchLog(cfg.DedupIDs, cfg.DedupWindow),
		metrics:     newMetrics(),
		ingestSlots: make(chan struct{}, cfg.MaxConcurrentIngest),
		querySlots:  make(chan struct{}, cfg.MaxConcurrentQueries),
		handoffDone: make(chan struct{}),
		stop:        make(chan struct{}),
	}
	s.cfg.Logger = s.log
	s.decoders.New = func() any { return newDecoder(&s.cfg) }
	if err := s.openStorage(); err != nil {
		s.stopPersistWork()
		if s.store != nil {
			s.store.close()
		}
		s.closeStorage()
		return nil, fmt.Errorf("cannot start leaf %s: %w", cfg.ID, err)
	}
	s.metrics.registerGauges(gauges{
		memoryUsed:  func() float64 { return float64(s.store.used()) },
		memoryLimit: float64(cfg.MemoryLimit),
		blocks:      func() float64 { return float64(s.totals().Blocks) },
		rows:        func() float64 { return float64(s.totals().Rows) },
		tables:      func() float64 { return float64(len(s.store.list())) },
	})
	s.handler = guard.Wrap(s.routes())

	s.start.DurationMS = msSince(began)
	s.state.Store(stateReady)
	s.bg.Add(1)
	go s.background()
	s.startPersist()
	s.log.Info("leaf ready", "start", s.start.Path, "duration_ms", s.start.DurationMS,
		"blocks", s.start.Blocks, "rows", s.start.Rows, "memory_limit", cfg.MemoryLimit)
	return s, nil
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

// ID is the leaf's id.
func (s *Server) ID() string { return s.cfg.ID }

// Handler returns the leaf's HTTP API.
func (s *Server) Handler() http.Handler { return s.handler }

// HandoffDone is closed once POST /v1/admin/handoff completed: the leaf's data is
// handed over and its owner should stop serving and exit.
func (s *Server) HandoffDone() <-chan struct{} { return s.handoffDone }

// Serve serves the HTTP API on ln until ctx ends, then shuts the listener down,
// letting requests in progress finish for up to 10 seconds. It returns nil after a
// clean shutdown. Serve does not Close the leaf.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       5 * time.Minute,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	s.log.Info("leaf serving", "addr", ln.Addr().String())
	select {
	case err := <-errc:
		return fmt.Errorf("cannot serve leaf API on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := srv.Shutdown(shutCtx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("cannot shut leaf API down cleanly: %w", err)
	}
	return nil
}

// Close stops the background work and frees every block; block files, their disk
// copies and the WAL stay for the next start. The handler must not be serving any
// more. Close is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.stop)
		s.bg.Wait()
		s.stopPersistWork() // block files stay for the next process
		s.store.close()
		s.closeStorage()
		s.log.Info("leaf closed")
	})
	return nil
}

// background seals open blocks once they are SealAge old and runs retention every
// RetentionInterval.
func (s *Server) background() {
	defer s.bg.Done()
	sealEvery := min(max(s.cfg.SealAge/4, 10*time.Millisecond), time.Second)
	sealT := time.NewTicker(sealEvery)
	defer sealT.Stop()
	retainT := time.NewTicker(s.cfg.RetentionInterval)
	defer retainT.Stop()
	for {
		select {
		case <-s.stop:
			return
		case now := <-sealT.C:
			s.store.sealOlder(now.Add(-s.cfg.SealAge))
		case now := <-retainT.C:
			s.store.retain(now)
		}
	}
}

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	route := func(path string, methods []string, h http.HandlerFunc) {
		for _, m := range methods {
			if m == http.MethodGet || m == http.MethodPost {
				mux.HandleFunc(m+" "+path, h)
			}
		}
		mux.HandleFunc(path, methodNotAllowed(methods...))
	}
	post, get := []string{http.MethodPost}, []string{http.MethodGet}
	route("/v1/ingest/{table}", post, s.handleIngest)
	route("/v1/partial", post, s.handlePartial)
	route("/v1/stats", get, s.handleStats)
	route("/v1/tables", get, s.handleTables)
	route("/v1/tables/{table}", get, s.handleTable)
	route("/v1/admin/handoff", post, s.handleHandoff)
	route("/livez", get, s.handleLivez)
	route("/readyz", get, s.handleReadyz)
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("/metrics", methodNotAllowed(http.MethodGet))
	mux.HandleFunc("/", notFound)
	return mux
}

func (s *Server) handleLivez(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = w.Write([]byte("ok\n"))
}

func (s *Server) handleReadyz(w http.ResponseWriter, r *http.Request) {
	switch s.state.Load() {
	case stateReady:
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ready\n"))
	case stateStarting:
		writeRetry(w, http.StatusServiceUnavailable, 1, "leaf %s is starting", s.cfg.ID)
	default:
		writeError(w, http.StatusServiceUnavailable, "leaf %s is draining for a handoff", s.cfg.ID)
	}
}

// enterIngest counts an ingest request in flight; it reports false (counting
// nothing) when the leaf no longer takes ingest.
func (s *Server) enterIngest() bool {
	s.flightMu.Lock()
	defer s.flightMu.Unlock()
	if s.state.Load() != stateReady {
		return false
	}
	s.inFlight++
	return true
}

func (s *Server) exitIngest() {
	s.flightMu.Lock()
	defer s.flightMu.Unlock()
	s.inFlight--
	if s.inFlight == 0 && s.idle != nil {
		close(s.idle)
		s.idle = nil
	}
}

// drain stops new ingest and returns a channel closed once no ingest request is in
// flight.
func (s *Server) drain() <-chan struct{} {
	s.flightMu.Lock()
	defer s.flightMu.Unlock()
	s.state.Store(stateDraining)
	idle := make(chan struct{})
	if s.inFlight == 0 {
		close(idle)
	} else if s.idle != nil {
		idle = s.idle
	} else {
		s.idle = idle
	}
	return idle
}
