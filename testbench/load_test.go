package testbench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reef-db/reef/api"
)

// ingestServer is an httptest ingest endpoint that records what it receives and
// answers as fail says.
type ingestServer struct {
	t *testing.T
	// fail, when set, decides the answer to an attempt before the body is read: a
	// status >= 300 is sent as an api.Error, -1 drops the connection, 0 accepts.
	fail func(batchID string, attempt int) int

	mu          sync.Mutex
	attempts    map[string]int
	rows        map[string]int // accepted rows per batch id
	batches     map[string][]byte
	inFlight    int
	maxInFlight int
}

func newIngestServer(t *testing.T, fail func(string, int) int) (*ingestServer, *api.Client) {
	t.Helper()
	s := &ingestServer{t: t, fail: fail, attempts: map[string]int{}, rows: map[string]int{}, batches: map[string][]byte{}}
	srv := httptest.NewServer(http.HandlerFunc(s.serve))
	c := api.NewClient(srv.URL)
	t.Cleanup(func() {
		c.HTTP.CloseIdleConnections()
		srv.Close()
	})
	return s, c
}

func (s *ingestServer) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v1/ingest/events" {
		writeFakeJSON(w, http.StatusNotFound, api.Error{Message: "unexpected " + r.Method + " " + r.URL.Path})
		return
	}
	id := r.Header.Get(api.HeaderBatchID)
	s.mu.Lock()
	s.attempts[id]++
	attempt := s.attempts[id]
	s.inFlight++
	s.maxInFlight = max(s.maxInFlight, s.inFlight)
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inFlight--
		s.mu.Unlock()
	}()
	// Let concurrent requests overlap so that the in-flight bound is exercised.
	time.Sleep(2 * time.Millisecond)

	if s.fail != nil {
		switch status := s.fail(id, attempt); {
		case status < 0:
			hj, ok := w.(http.Hijacker)
			if !ok {
				s.t.Error("cannot hijack the connection")
				return
			}
			conn, _, err := hj.Hijack()
			if err == nil {
				conn.Close()
			}
			return
		case status >= 300:
			writeFakeJSON(w, status, api.Error{Message: http.StatusText(status)})
			return
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeFakeJSON(w, http.StatusBadRequest, api.Error{Message: err.Error()})
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != api.ContentTypeNDJSON {
		s.t.Errorf("content type %q", ct)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.rows[id]; dup {
		writeFakeJSON(w, http.StatusOK, api.IngestResult{Table: "events", BatchID: id, Duplicate: true, Leaf: "leaf-x"})
		return
	}
	n := bytes.Count(body, []byte("\n"))
	s.rows[id] = n
	s.batches[id] = body
	writeFakeJSON(w, http.StatusOK, api.IngestResult{Table: "events", Accepted: n, BatchID: id, Leaf: "leaf-" + string('a'+byte(len(s.rows)%3))})
}

// snapshot returns copies of what the server recorded. Handlers of requests that the
// client gave up on may still run, so tests read only through it.
func (s *ingestServer) snapshot() (attempts, rows map[string]int, batches map[string][]byte, maxInFlight int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.attempts), maps.Clone(s.rows), maps.Clone(s.batches), s.maxInFlight
}

func TestLoad(t *testing.T) {
	cfg := GenConfig{Seed: 3, Rows: 25_000, End: testEnd}
	s, c := newIngestServer(t, nil)
	var progress bytes.Buffer
	st, err := Load(context.Background(), c, "events", cfg, LoadOptions{BatchRows: 1000, Concurrency: 3, Progress: &progress, ProgressEvery: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if st.Rows != 25_000 || st.Batches != 25 || st.Retries != 0 || st.Duplicates != 0 || st.Rejected != 0 {
		t.Fatalf("stats %+v, want 25000 rows in 25 batches without retries", st)
	}
	var leafRows int64
	for _, n := range st.Leaves {
		leafRows += n
	}
	if len(st.Leaves) != 3 || leafRows != st.Rows {
		t.Errorf("per-leaf rows %v, want 3 leaves summing to %d", st.Leaves, st.Rows)
	}
	if st.Elapsed <= 0 || st.RowsPerSec() <= 0 {
		t.Errorf("elapsed %v, %v rows/s", st.Elapsed, st.RowsPerSec())
	}
	_, _, batches, maxInFlight := s.snapshot()
	if maxInFlight > 3 {
		t.Errorf("%d requests in flight, want at most 3", maxInFlight)
	}

	// Batch i holds rows [1000i, 1000i+1000) of the dataset, in order, so that the
	// batches put together are exactly WriteNDJSON's output.
	want := genBytes(t, cfg)
	prefix := ""
	var got []byte
	for i := range 25 {
		id := ""
		for k := range batches {
			if strings.HasSuffix(k, "-"+strconv.Itoa(i)) {
				id = k
			}
		}
		if id == "" {
			t.Fatalf("no batch %d among %d batches", i, len(batches))
		}
		p := strings.TrimSuffix(id, "-"+strconv.Itoa(i))
		if prefix != "" && p != prefix {
			t.Fatalf("batch ids %q and %q have different prefixes", prefix, p)
		}
		prefix = p
		got = append(got, batches[id]...)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("the batches put together differ from WriteNDJSON's output")
	}
	if st.Bytes != int64(len(want)) {
		t.Errorf("stats count %d bytes, sent %d", st.Bytes, len(want))
	}

	lines := strings.Split(strings.TrimSpace(progress.String()), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "loaded 25000 rows into events in ") || !strings.Contains(last, "25 batches") {
		t.Errorf("last progress line %q", last)
	}
	if len(lines) < 2 || !strings.Contains(lines[0], "/25000 rows (") {
		t.Errorf("no progress lines before the summary: %q", progress.String())
	}

	// The same dataset loaded again has the same batch ids: the server holds every
	// batch already, and the rows count as stored.
	st, err = Load(context.Background(), c, "events", cfg, LoadOptions{BatchRows: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if st.Duplicates != 25 || st.Rows != 25_000 {
		t.Errorf("second load: %+v, want 25 duplicate batches of 25000 rows", st)
	}
	// A different prefix loads it again.
	st, err = Load(context.Background(), c, "events", cfg, LoadOptions{BatchRows: 1000, BatchIDPrefix: "again"})
	if err != nil || st.Duplicates != 0 || st.Rows != 25_000 {
		t.Errorf("load with a new prefix: %+v, %v; want 25000 new rows", st, err)
	}
}

func TestLoadRetries(t *testing.T) {
	for _, tc := range []struct {
		name string
		fail func(id string, attempt int) int
	}{
		{"429", failFirst(2, 429)},
		{"503", failFirst(1, 503)},
		{"502 then 504", func(_ string, attempt int) int { return []int{502, 504, 0}[min(attempt-1, 2)] }},
		{"dropped connection", failFirst(1, -1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, c := newIngestServer(t, tc.fail)
			cfg := GenConfig{Seed: 4, Rows: 3000, End: testEnd}
			st, err := Load(context.Background(), c, "events", cfg, LoadOptions{BatchRows: 1000, Concurrency: 2})
			if err != nil {
				t.Fatal(err)
			}
			if st.Rows != 3000 || st.Batches != 3 || st.Duplicates != 0 {
				t.Fatalf("stats %+v, want 3000 rows in 3 batches", st)
			}
			attempts, rows, _, _ := s.snapshot()
			retries := 0
			for id, n := range attempts {
				retries += n - 1
				if rows[id] != 1000 {
					t.Errorf("batch %s: %d rows stored, want 1000", id, rows[id])
				}
			}
			if len(attempts) != 3 || retries == 0 || st.Retries != retries {
				t.Errorf("%d batch ids, %d retries seen, %d counted; want 3 ids retried under the same id", len(attempts), retries, st.Retries)
			}
		})
	}
}

func TestLoadErrors(t *testing.T) {
	ctx := context.Background()
	cfg := GenConfig{Seed: 4, Rows: 5000, End: testEnd}

	t.Run("bad request stops the load", func(t *testing.T) {
		s, c := newIngestServer(t, func(id string, _ int) int { return 400 })
		_, err := Load(ctx, c, "events", cfg, LoadOptions{BatchRows: 1000, Concurrency: 2})
		var ae *api.Error
		if !errors.As(err, &ae) || ae.Status != 400 || !strings.Contains(err.Error(), "cannot load batch gen-") {
			t.Fatalf("err = %v, want the 400 of a named batch", err)
		}
		attempts, _, _, _ := s.snapshot()
		for id, n := range attempts {
			if n != 1 {
				t.Errorf("batch %s sent %d times; a 400 must not be retried", id, n)
			}
		}
	})
	t.Run("attempts are bounded", func(t *testing.T) {
		s, c := newIngestServer(t, func(id string, _ int) int { return 503 })
		_, err := Load(ctx, c, "events", cfg, LoadOptions{BatchRows: 5000, MaxAttempts: 3})
		if err == nil || !strings.Contains(err.Error(), "gave up after 3 attempts") {
			t.Fatalf("err = %v, want giving up after 3 attempts", err)
		}
		attempts, _, _, _ := s.snapshot()
		for id, n := range attempts {
			if n != 3 {
				t.Errorf("batch %s sent %d times, want 3", id, n)
			}
		}
	})
	t.Run("cancel", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		var once sync.Once
		_, c := newIngestServer(t, func(id string, _ int) int {
			once.Do(cancel)
			return 503
		})
		_, err := Load(cctx, c, "events", cfg, LoadOptions{BatchRows: 100})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
	t.Run("invalid arguments", func(t *testing.T) {
		_, c := newIngestServer(t, nil)
		f := func(c *api.Client, table string, cfg GenConfig, opts LoadOptions, want string) {
			t.Helper()
			if _, err := Load(ctx, c, table, cfg, opts); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("err = %v, want one containing %q", err, want)
			}
		}
		f(nil, "events", cfg, LoadOptions{}, "nil client")
		f(c, "", cfg, LoadOptions{}, "empty table")
		f(c, "events", GenConfig{Rows: -1}, LoadOptions{}, "rows is -1")
		f(c, "events", cfg, LoadOptions{BatchRows: -1}, "option BatchRows is negative (-1)")
		f(c, "events", cfg, LoadOptions{Concurrency: -2}, "option Concurrency is negative (-2)")
	})
	t.Run("rejected rows are counted", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			sc := bufio.NewScanner(r.Body)
			n := 0
			for sc.Scan() {
				n++
			}
			writeFakeJSON(w, http.StatusOK, api.IngestResult{Accepted: n - 1, Rejected: 1, Errors: []api.RowError{{Line: 2, Field: "bytes", Reason: "not an int"}}})
		}))
		defer srv.Close()
		c := api.NewClient(srv.URL)
		defer c.HTTP.CloseIdleConnections()
		st, err := Load(ctx, c, "events", cfg, LoadOptions{BatchRows: 1000})
		if err != nil {
			t.Fatal(err)
		}
		if st.Rows != 4995 || st.Rejected != 5 || st.RowErrors != 5 || st.FirstError != "batch 0 line 2 field bytes: not an int" {
			t.Errorf("stats %+v, want 4995 rows, 5 rejected, first error of batch 0", st)
		}
	})
}

func TestLoadEmpty(t *testing.T) {
	s, c := newIngestServer(t, nil)
	st, err := Load(context.Background(), c, "events", GenConfig{Rows: 0}, LoadOptions{})
	attempts, _, _, _ := s.snapshot()
	if err != nil || st.Rows != 0 || st.Batches != 0 || len(attempts) != 0 {
		t.Fatalf("Load of 0 rows: %+v, %v, %d requests", st, err, len(attempts))
	}
}

// failFirst answers the first n attempts of every batch with status.
func failFirst(n, status int) func(string, int) int {
	return func(_ string, attempt int) int {
		if attempt <= n {
			return status
		}
		return 0
	}
}
