package shell

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reef-db/reef/api"
)

// fakeAggregator answers /v1/sql, /v1/tables and /v1/tables/{t} the way an aggregator
// does, with canned answers chosen by the query text.
type fakeAggregator struct {
	srv *httptest.Server

	mu       sync.Mutex
	requests []api.QueryRequest // every /v1/sql request, in order
	tableGet int                // GET /v1/tables/{t} count

	slowStarted chan struct{} // a "slow" query reached the server
	slowAborted chan struct{} // … and its request was cancelled
}

var eventsTable = api.TableStats{
	Name: "events", Rows: 1234567, Bytes: 48 << 20, Blocks: 19,
	MinTime: 1700000000, MaxTime: 1700086399,
	Columns: []api.ColumnInfo{
		{Name: "time", Type: "int"}, {Name: "host", Type: "string"}, {Name: "http.status", Type: "int"},
		{Name: "latency_ms", Type: "float"}, {Name: "tags", Type: "set"}, {Name: "status", Type: "string"},
	},
}

var logsTable = api.TableStats{
	Name: "logs", Rows: 12, Bytes: 4096, Blocks: 1, MinTime: 1700000000, MaxTime: 1700000100,
	Columns: []api.ColumnInfo{{Name: "time", Type: "int"}, {Name: "level", Type: "string"}, {Name: "msg", Type: "string"}},
}

// Canned answers.
const (
	groupByResult = `{"columns":[{"name":"host","type":"string"},{"name":"count","type":"int"},{"name":"avg","type":"float"}],
"rows":[["web-1",1234567,12.5],["web-2",98,0.25],["db, \"primary\"",3,1000]],
"coverage":{"leaves_total":8,"leaves_responded":8,"rows_scanned":41234567,"rows_estimated_total":41234567,"percent":100},
"partial":false,"timings":{"parse_ms":0.1,"scan_ms":20.3,"merge_ms":0.4,"total_ms":21}}`

	partialResult = `{"columns":[{"name":"host","type":"string"},{"name":"count","type":"int"}],
"rows":[["web-1",10],["web-2",20],["web-3",30]],
"coverage":{"leaves_total":8,"leaves_responded":7,"rows_scanned":41234567,"rows_estimated_total":47125219,"percent":87.5},
"partial":true,"errors":[{"node":"leaf-7","error":"context deadline exceeded"}],"timings":{"total_ms":500}}`

	seriesResult = `{"columns":[{"name":"time","type":"int"},{"name":"count","type":"int"}],
"rows":[[1700000000,1],[1700000060,2],[1700000120,4],[1700000180,8]],
"coverage":{"leaves_total":1,"leaves_responded":1,"rows_scanned":15,"rows_estimated_total":15,"percent":100},
"partial":false,"timings":{"total_ms":2}}`
)

func newFakeAggregator(t *testing.T) *fakeAggregator {
	t.Helper()
	f := &fakeAggregator{slowStarted: make(chan struct{}, 1), slowAborted: make(chan struct{}, 1)}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/tables", func(w http.ResponseWriter, r *http.Request) {
		writeJSONAnswer(w, 200, map[string]any{"tables": []api.TableStats{eventsTable, logsTable}})
	})
	mux.HandleFunc("GET /v1/tables/{name}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		f.tableGet++
		f.mu.Unlock()
		switch r.PathValue("name") {
		case "events":
			writeJSONAnswer(w, 200, eventsTable)
		case "logs":
			writeJSONAnswer(w, 200, logsTable)
		default:
			writeJSONAnswer(w, 404, api.Error{Message: "no table " + r.PathValue("name")})
		}
	})
	mux.HandleFunc("POST /v1/sql", f.sql)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAggregator) sql(w http.ResponseWriter, r *http.Request) {
	var req api.QueryRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		writeJSONAnswer(w, 400, api.Error{Message: "bad request: " + err.Error()})
		return
	}
	f.mu.Lock()
	f.requests = append(f.requests, req)
	f.mu.Unlock()
	q := req.SQL
	switch {
	case strings.Contains(q, "slow"):
		f.slowStarted <- struct{}{}
		select {
		case <-r.Context().Done():
			f.slowAborted <- struct{}{}
		case <-time.After(time.Minute):
		}
	case strings.Contains(q, "count( FROM"), strings.Contains(q, "WHER "):
		// A syntax error at the token the test query puts there.
		pos := strings.Index(q, "FROM")
		if strings.Contains(q, "WHER ") {
			pos = strings.Index(q, "host")
		}
		writeJSONAnswer(w, 400, api.Error{Message: "syntax error: unexpected token", Position: pos + 1})
	case strings.Contains(q, "nope"):
		writeJSONAnswer(w, 404, api.Error{Message: `no table "nope"`})
	case strings.Contains(q, "partial"):
		io.WriteString(w, partialResult)
	case strings.Contains(q, "time(1m)"):
		io.WriteString(w, seriesResult)
	case strings.Contains(q, "empty"):
		io.WriteString(w, `{"columns":[{"name":"n","type":"int"}],"rows":[],"coverage":{"leaves_total":1,"leaves_responded":1,"percent":100}}`)
	default:
		io.WriteString(w, groupByResult)
	}
}

func (f *fakeAggregator) lastRequest() api.QueryRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) == 0 {
		return api.QueryRequest{}
	}
	return f.requests[len(f.requests)-1]
}

func (f *fakeAggregator) sqlCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.requests)
}

func writeJSONAnswer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// client returns a client of the fake that is closed when the test ends.
func (f *fakeAggregator) client(t *testing.T) *api.Client {
	t.Helper()
	c := api.NewClient(f.srv.URL)
	t.Cleanup(c.HTTP.CloseIdleConnections)
	return c
}

// testShell is a Shell writing into buffers.
type testShell struct {
	*Shell
	stdout, stderr *bytes.Buffer
}

func newTestShell(t *testing.T, f *fakeAggregator, interactive bool) *testShell {
	t.Helper()
	ts := &testShell{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}}
	ts.Shell = New(Config{Client: f.client(t), Stdout: ts.stdout, Stderr: ts.stderr, Interactive: interactive})
	t.Cleanup(func() { ts.Close() })
	return ts
}

// scripted is a LineReader that returns its lines in order, then io.EOF. A line
// equal to ctrlC stands for Ctrl-C at the prompt.
type scripted struct {
	lines   []string
	prompts []string
	history []string
}

const ctrlC = "\x03"

func (s *scripted) Prompt(p string) (string, error) {
	s.prompts = append(s.prompts, p)
	if len(s.lines) == 0 {
		return "", io.EOF
	}
	l := s.lines[0]
	s.lines = s.lines[1:]
	if l == ctrlC {
		return "", ErrInterrupted
	}
	return l, nil
}

func (s *scripted) AppendHistory(e string) { s.history = append(s.history, e) }

// run drives the shell's loop over lines.
func (ts *testShell) run(t *testing.T, lines ...string) *scripted {
	t.Helper()
	lr := &scripted{lines: lines}
	if err := ts.Loop(context.Background(), lr); err != nil {
		t.Fatalf("Loop: %v", err)
	}
	return lr
}
