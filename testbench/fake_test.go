package testbench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/reef-db/reef/api"
)

// fakeEnv makes the test binary act as a minimal reef leaf or aggregator (see
// fakeMain), so that the cluster harness is tested with real processes, ports,
// signals and logs without the real reef binary.
const fakeEnv = "REEF_TESTBENCH_FAKE"

// fakeMain runs `leaf` or `aggregator` with the flags the harness passes, plus a few
// of its own to inject faults:
//
//	--fail                  exit 3 at once, after a line on stderr
//	--port-taken-once FILE  the first time (FILE missing): create FILE, claim the port
//	                        is in use and exit 1
//	--ignore-term           ignore SIGTERM (only SIGKILL ends it)
//	--reject-every N        aggregator: answer 503 to every N-th ingest request
//
// It exits 0 on SIGTERM or SIGINT.
func fakeMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "fake reef: no subcommand")
		return 2
	}
	role := args[0]
	fs := flag.NewFlagSet(role, flag.ContinueOnError)
	listen := fs.String("listen", "", "")
	id := fs.String("id", "", "")
	data := fs.String("data", "", "")
	shm := fs.String("shm-dir", "", "")
	leaves := fs.String("leaves", "", "")
	fail := fs.Bool("fail", false, "")
	takenOnce := fs.String("port-taken-once", "", "")
	ignoreTerm := fs.Bool("ignore-term", false, "")
	rejectEvery := fs.Int("reject-every", 0, "")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	fmt.Printf("fake %s %s listening on %s (data %s, shm %s)\n", role, *id, *listen, *data, *shm)
	if *fail {
		fmt.Fprintln(os.Stderr, "fake reef: failing as asked")
		return 3
	}
	if *takenOnce != "" {
		if _, err := os.Stat(*takenOnce); errors.Is(err, os.ErrNotExist) {
			_ = os.WriteFile(*takenOnce, nil, 0o644)
			fmt.Fprintf(os.Stderr, "listen tcp %s: bind: address already in use\n", *listen)
			return 1
		}
	}
	for _, d := range []string{*data, *shm} {
		if d == "" {
			continue
		}
		if _, err := os.Stat(d); err != nil {
			fmt.Fprintln(os.Stderr, "fake reef:", err)
			return 1
		}
	}

	var h http.Handler
	switch role {
	case "leaf":
		h = newFakeLeaf(*id)
	case "aggregator":
		h = newFakeAggregator(strings.Split(*leaves, ","), *rejectEvery)
	default:
		fmt.Fprintf(os.Stderr, "fake reef: unknown subcommand %q\n", role)
		return 2
	}

	sigs := make(chan os.Signal, 1)
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
		signal.Notify(sigs, syscall.SIGINT)
	} else {
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	}
	srv := &http.Server{Addr: *listen, Handler: h, ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		fmt.Fprintln(os.Stderr, "fake reef:", err)
		return 1
	case s := <-sigs:
		fmt.Printf("fake %s %s: %v, exiting\n", role, *id, s)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		return 0
	}
}

// fakeLeaf counts the lines of every ingest batch per table and remembers batch ids.
type fakeLeaf struct {
	id      string
	mu      sync.Mutex
	rows    map[string]int64
	batches map[string]bool
}

func newFakeLeaf(id string) http.Handler {
	l := &fakeLeaf{id: id, rows: map[string]int64{}, batches: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("POST /v1/ingest/{table}", l.ingest)
	mux.HandleFunc("GET /v1/tables", func(w http.ResponseWriter, r *http.Request) {
		writeFakeJSON(w, http.StatusOK, map[string]any{"tables": l.tables()})
	})
	mux.HandleFunc("GET /v1/tables/{table}", func(w http.ResponseWriter, r *http.Request) {
		for _, t := range l.tables() {
			if t.Name == r.PathValue("table") {
				writeFakeJSON(w, http.StatusOK, t)
				return
			}
		}
		writeFakeJSON(w, http.StatusNotFound, api.Error{Message: "no such table"})
	})
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		s := api.Stats{LeafID: id, Ready: true, Tables: map[string]api.TableStats{}}
		for _, t := range l.tables() {
			s.Rows += t.Rows
			s.Tables[t.Name] = t
		}
		writeFakeJSON(w, http.StatusOK, s)
	})
	return mux
}

func (l *fakeLeaf) ingest(w http.ResponseWriter, r *http.Request) {
	table := r.PathValue("table")
	bid := r.Header.Get(api.HeaderBatchID)
	l.mu.Lock()
	dup := bid != "" && l.batches[bid]
	l.mu.Unlock()
	if dup {
		writeFakeJSON(w, http.StatusOK, api.IngestResult{Table: table, Leaf: l.id, BatchID: bid, Duplicate: true})
		return
	}
	res := api.IngestResult{Table: table, Leaf: l.id, BatchID: bid}
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		switch {
		case len(b) == 0:
		case json.Valid(b):
			res.Accepted++
		default:
			res.Rejected++
			res.Errors = append(res.Errors, api.RowError{Line: line, Reason: "invalid JSON"})
		}
	}
	if err := sc.Err(); err != nil {
		writeFakeJSON(w, http.StatusBadRequest, api.Error{Message: err.Error()})
		return
	}
	l.mu.Lock()
	if bid != "" {
		l.batches[bid] = true
	}
	l.rows[table] += int64(res.Accepted)
	l.mu.Unlock()
	writeFakeJSON(w, http.StatusOK, res)
}

func (l *fakeLeaf) tables() []api.TableStats {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []api.TableStats
	for name, rows := range l.rows {
		out = append(out, api.TableStats{Name: name, Rows: rows})
	}
	return out
}

// fakeAggregator sends ingest batches to its leaves in turn and sums their tables.
type fakeAggregator struct {
	leaves      []*api.Client
	rejectEvery int
	mu          sync.Mutex
	requests    int
}

func newFakeAggregator(urls []string, rejectEvery int) http.Handler {
	a := &fakeAggregator{rejectEvery: rejectEvery}
	for _, u := range urls {
		a.leaves = append(a.leaves, api.NewClient(u))
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		for _, c := range a.leaves {
			if err := c.Ready(r.Context()); err != nil {
				writeFakeJSON(w, http.StatusServiceUnavailable, api.Error{Message: err.Error()})
				return
			}
		}
		io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("POST /v1/ingest/{table}", a.ingest)
	mux.HandleFunc("GET /v1/tables", func(w http.ResponseWriter, r *http.Request) {
		writeFakeJSON(w, http.StatusOK, map[string]any{"tables": a.tables(r.Context())})
	})
	mux.HandleFunc("GET /v1/tables/{table}", func(w http.ResponseWriter, r *http.Request) {
		for _, t := range a.tables(r.Context()) {
			if t.Name == r.PathValue("table") {
				writeFakeJSON(w, http.StatusOK, t)
				return
			}
		}
		writeFakeJSON(w, http.StatusNotFound, api.Error{Message: "no such table"})
	})
	return mux
}

func (a *fakeAggregator) ingest(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	a.requests++
	n := a.requests
	a.mu.Unlock()
	if a.rejectEvery > 0 && n%a.rejectEvery == 0 {
		writeFakeJSON(w, http.StatusServiceUnavailable, api.Error{Message: "busy, try again"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<20))
	if err != nil {
		writeFakeJSON(w, http.StatusBadRequest, api.Error{Message: err.Error()})
		return
	}
	leaf := a.leaves[n%len(a.leaves)]
	res, err := leaf.Ingest(r.Context(), r.PathValue("table"), bytes.NewReader(body), r.Header.Get("Content-Type"), r.Header.Get(api.HeaderBatchID))
	if err != nil {
		writeFakeJSON(w, http.StatusBadGateway, api.Error{Message: err.Error()})
		return
	}
	writeFakeJSON(w, http.StatusOK, res)
}

func (a *fakeAggregator) tables(ctx context.Context) []api.TableStats {
	sum := map[string]int64{}
	for _, c := range a.leaves {
		ts, err := c.Tables(ctx)
		if err != nil {
			continue
		}
		for _, t := range ts {
			sum[t.Name] += t.Rows
		}
	}
	var out []api.TableStats
	for name, rows := range sum {
		out = append(out, api.TableStats{Name: name, Rows: rows})
	}
	return out
}

func writeFakeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
