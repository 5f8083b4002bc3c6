package bench

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/valyala/fastjson"

	"github.com/reef-db/reef/api"
)

// fakeAggregator is an in-memory stand-in for a reef aggregator, enough for the
// bench: it stores ingest batches by id (a repeated id adds nothing), counts rows per
// `batch` value, and answers the SQL the bench sends. Faults are injected through
// its hooks.
type fakeAggregator struct {
	t   *testing.T
	srv *httptest.Server

	mu       sync.Mutex
	ids      map[string]int  // batch id → rows accepted
	perBatch map[int64]int64 // `batch` column → rows stored
	rows     int64
	requests int
	inFlight int
	maxIn    int
	// refuse, when it returns a status, answers the n-th ingest request (from 1)
	// with it without storing anything.
	refuse func(n int) int
	// loseAnswer, when true for the n-th request, stores the batch and then drops
	// the connection without answering (the writer must retry with the same id).
	loseAnswer func(n int) bool
	// mangle, when set, may change the rows a batch stores (to fake lost or
	// duplicated rows).
	mangle func(batch int64, rows int64) int64
	// coverage is the coverage percent of query answers (default 100).
	coverage float64
}

func newFakeAggregator(t *testing.T) *fakeAggregator {
	t.Helper()
	f := &fakeAggregator{t: t, ids: map[string]int{}, perBatch: map[int64]int64{}, coverage: 100}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/ingest/{table}", f.ingest)
	mux.HandleFunc("POST /v1/sql", f.sql)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAggregator) client() *api.Client { return api.NewClient(f.srv.URL) }

func (f *fakeAggregator) ingest(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	f.requests++
	n := f.requests
	f.inFlight++
	f.maxIn = max(f.maxIn, f.inFlight)
	refuse, lose := f.refuse, f.loseAnswer
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inFlight--
		f.mu.Unlock()
	}()
	if refuse != nil {
		if status := refuse(n); status != 0 {
			w.WriteHeader(status)
			fmt.Fprintf(w, `{"error":"refused with %d"}`, status)
			return
		}
	}
	id := r.Header.Get(api.HeaderBatchID)
	res := api.IngestResult{Table: r.PathValue("table"), BatchID: id, Leaf: "fake"}
	f.mu.Lock()
	if prev, ok := f.ids[id]; ok && id != "" {
		res.Accepted, res.Duplicate = prev, true
	} else {
		perBatch := map[int64]int64{}
		sc := bufio.NewScanner(bytes.NewReader(body))
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			v, err := fastjson.ParseBytes(sc.Bytes())
			if err != nil {
				f.t.Errorf("fake aggregator: bad line %q: %v", sc.Bytes(), err)
				continue
			}
			perBatch[v.GetInt64(BatchColumn)]++
			res.Accepted++
		}
		for b, c := range perBatch {
			if f.mangle != nil {
				c = f.mangle(b, c)
			}
			f.perBatch[b] += c
			f.rows += c
		}
		f.ids[id] = res.Accepted
	}
	f.mu.Unlock()
	if lose != nil && lose(n) {
		panic(http.ErrAbortHandler) // drops the connection: the answer is lost
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// sql answers the verification queries and, for anything else, one row.
func (f *fakeAggregator) sql(w http.ResponseWriter, r *http.Request) {
	var req api.QueryRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	res := api.QueryResult{Coverage: api.Coverage{Percent: f.coverage, LeavesTotal: 2, LeavesResponded: 2}}
	res.Partial = f.coverage < 100
	var lo, hi int64
	var table string
	switch {
	case strings.HasPrefix(req.SQL, "SELECT count(*) FROM ") && !strings.Contains(req.SQL, " WHERE "):
		res.Columns = []api.ResultColumn{{Name: "count(*)", Type: "int"}}
		res.Rows = [][]any{{f.rows}}
	case scan(req.SQL, "SELECT batch, count(*) FROM %s WHERE batch >= %d AND batch < %d GROUP BY batch", &table, &lo, &hi):
		res.Columns = []api.ResultColumn{{Name: "batch", Type: "int"}, {Name: "count(*)", Type: "int"}}
		var bs []int64
		for b := range f.perBatch {
			if b >= lo && b < hi {
				bs = append(bs, b)
			}
		}
		slices.Sort(bs)
		for _, b := range bs {
			res.Rows = append(res.Rows, []any{b, f.perBatch[b]})
		}
	default:
		res.Columns = []api.ResultColumn{{Name: "x", Type: "int"}}
		res.Rows = [][]any{{1}}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(res)
}

// scan reports whether s matches format entirely (fmt.Sscanf verbs).
func scan(s, format string, args ...any) bool {
	n, err := fmt.Sscanf(s, format, args...)
	return err == nil && n == len(args)
}

// stored returns the rows stored for batch b.
func (f *fakeAggregator) stored(b int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.perBatch[b]
}
