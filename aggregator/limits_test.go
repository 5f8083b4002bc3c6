package aggregator

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/internal/auth"
	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/exec"
)

// fakeChild is a leaf as the aggregator sees it: stats for table t (columns time
// and k), partial answers computed over its block, and ingest that records what it
// got.
type fakeChild struct {
	srv   *httptest.Server
	block *block.Block

	mu      sync.Mutex
	ingests []fakeIngest
	auth    []string      // Authorization headers seen
	hold    chan struct{} // if set, ingest waits for it to close …
	held    chan struct{} // … after a send here
}

type fakeIngest struct {
	contentType string
	body        []byte
}

// newFakeChild serves a leaf holding groups distinct values of k.
func newFakeChild(t *testing.T, groups int) *fakeChild {
	t.Helper()
	b := block.NewBuilder("t")
	tcol, err := b.AddColumn(block.TimeColumn, block.TypeInt)
	if err != nil {
		t.Fatal(err)
	}
	kcol, err := b.AddColumn("k", block.TypeString)
	if err != nil {
		t.Fatal(err)
	}
	for i := range groups {
		b.BeginRow()
		b.SetInt(tcol, 1_700_000_000+int64(i))
		b.SetString(kcol, []byte(fmt.Sprintf("k%05d", i)))
		b.EndRow()
	}
	blk, err := b.Build(1)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeChild{block: blk}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/stats", func(w http.ResponseWriter, r *http.Request) {
		f.note(r)
		writeJSON(w, 200, api.Stats{LeafID: "fake", Ready: true, Leaves: 1, Rows: int64(groups), FreeBytes: 1 << 30,
			Tables: map[string]api.TableStats{"t": {Name: "t", Rows: int64(groups), MinTime: 1_700_000_000, MaxTime: 1_700_000_000 + int64(groups),
				Columns: []api.ColumnInfo{{Name: "time", Type: "int"}, {Name: "k", Type: "string"}}}}})
	})
	mux.HandleFunc("POST /v1/partial", func(w http.ResponseWriter, r *http.Request) {
		f.note(r)
		var req api.PartialRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			writeError(w, 400, err)
			return
		}
		part, err := exec.Execute(r.Context(), &req.Plan, []*block.Block{f.block}, exec.Options{MaxGroups: 1 << 20})
		if err != nil {
			writeError(w, 400, err)
			return
		}
		part.LeavesTotal, part.LeavesResponded, part.RowsEstimated = 1, 1, part.RowsInRange
		w.Header().Set("Content-Type", api.ContentTypePartial)
		_, _ = w.Write(agg.AppendEncode(nil, part))
	})
	mux.HandleFunc("POST /v1/ingest/{table}", func(w http.ResponseWriter, r *http.Request) {
		f.note(r)
		if f.hold != nil {
			f.held <- struct{}{}
			<-f.hold
		}
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.ingests = append(f.ingests, fakeIngest{r.Header.Get("Content-Type"), body})
		f.mu.Unlock()
		// Like a leaf: blank lines are no rows; lines with "bad" are rejected.
		rows := 0
		var errs []api.RowError
		for i, line := range bytes.Split(bytes.TrimSuffix(body, []byte("\n")), []byte("\n")) {
			switch {
			case len(bytes.TrimSpace(line)) == 0:
			case bytes.Contains(line, []byte("bad")):
				errs = append(errs, api.RowError{Line: i + 1, Reason: "bad row"})
			default:
				rows++
			}
		}
		writeJSON(w, 200, api.IngestResult{Table: r.PathValue("table"), Accepted: rows, Rejected: len(errs), Errors: errs, Leaf: "fake"})
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeChild) note(r *http.Request) {
	f.mu.Lock()
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.mu.Unlock()
}

// newTestAggregator serves an aggregator over the children.
func newTestAggregator(t *testing.T, cfg Config, children ...*fakeChild) (*Server, *httptest.Server) {
	t.Helper()
	for _, c := range children {
		cfg.Children = append(cfg.Children, c.srv.URL)
	}
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.HealthInterval = time.Hour
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s.Start(context.Background())
	srv := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		srv.Close()
		s.Close()
	})
	return s, srv
}

// post sends a request and returns status, headers and body.
func post(t *testing.T, url string, body []byte, hdr ...string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, data
}

func errorOf(t *testing.T, body []byte) string {
	t.Helper()
	var e api.Error
	if err := json.Unmarshal(body, &e); err != nil || e.Message == "" {
		t.Fatalf("not a JSON error: %q", body)
	}
	return e.Message
}

func TestResultBounds(t *testing.T) {
	a, b := newFakeChild(t, 300), newFakeChild(t, 300)
	_, srv := newTestAggregator(t, Config{MaxResultRows: 100, MaxGroups: 250}, a, b)
	c := api.NewClient(srv.URL)
	defer c.HTTP.CloseIdleConnections()
	cases := []struct {
		sql       string
		rows      int
		truncated bool
	}{
		// 300 groups on each child (the same 300), merged: over MaxGroups (250)
		// and then cut at MaxResultRows (100).
		{"SELECT k, count(*) FROM t GROUP BY k", 100, true},
		{"SELECT k, count(*) FROM t GROUP BY k LIMIT 10", 10, true},
		// A LIMIT under every bound is not truncation.
		{"SELECT count(*) FROM t", 1, false},
		{"SELECT k FROM t LIMIT 50", 50, false},
		{"SELECT k FROM t LIMIT 500", 100, true},
	}
	for _, tc := range cases {
		res, err := c.SQL(context.Background(), api.QueryRequest{SQL: tc.sql})
		if err != nil {
			t.Errorf("%s: %v", tc.sql, err)
			continue
		}
		if len(res.Rows) != tc.rows || res.Truncated != tc.truncated {
			t.Errorf("%s: %d rows truncated %v, want %d truncated %v", tc.sql, len(res.Rows), res.Truncated, tc.rows, tc.truncated)
		}
	}
}

func TestQueryBadInput(t *testing.T) {
	_, srv := newTestAggregator(t, Config{}, newFakeChild(t, 3))
	c := api.NewClient(srv.URL)
	defer c.HTTP.CloseIdleConnections()
	cases := []struct {
		sql    string
		status int
		msg    string
		pos    int
	}{
		{"SELECT count(*) FORM t", 400, "syntax error at position 17", 17},
		{"SELECT count(*) FROM nope", 404, `unknown table "nope"`, 0},
		{"SELECT count(*) FROM t WHERE kk = 'a'", 400, `unknown column "kk"`, 0},
		{"SELECT sum(k) FROM t", 400, `cannot sum column "k" of type string`, 0},
		{"SELECT count(*) FROM t WHERE time > 1/0", 400, "division by zero", 38},
		{"SELECT count(*) FROM t WHERE k ~ '('", 400, "cannot compile regular expression", 0},
	}
	for _, tc := range cases {
		_, err := c.SQL(context.Background(), api.QueryRequest{SQL: tc.sql})
		var ae *api.Error
		if !asAPIError(err, &ae) || ae.Status != tc.status || !strings.Contains(ae.Message, tc.msg) || (tc.pos != 0 && ae.Position != tc.pos) {
			t.Errorf("%s: %v (%+v), want %d %q at %d", tc.sql, err, ae, tc.status, tc.msg, tc.pos)
		}
	}
	status, _, body := post(t, srv.URL+"/v1/sql", bytes.Repeat([]byte("x"), 2<<20), "Content-Type", "text/plain")
	if msg := errorOf(t, body); status != 413 || !strings.Contains(msg, "over 1 MiB") {
		t.Errorf("huge query: %d %q", status, msg)
	}
	status, _, body = post(t, srv.URL+"/v1/partial", bytes.Repeat([]byte(" "), maxPartialRequestBytes+1))
	if msg := errorOf(t, body); status != 413 {
		t.Errorf("huge partial request: %d %q", status, msg)
	}
}

func asAPIError(err error, target **api.Error) bool {
	e, ok := err.(*api.Error)
	if ok {
		*target = e
	}
	return ok
}

func TestQueryTimeoutCapped(t *testing.T) {
	s, _ := newTestAggregator(t, Config{QueryTimeout: time.Second, MaxQueryTimeout: 3 * time.Second}, newFakeChild(t, 1))
	for _, c := range []struct {
		ms   int64
		want time.Duration
	}{{0, time.Second}, {500, 500 * time.Millisecond}, {3000, 3 * time.Second}, {1 << 62, 3 * time.Second}} {
		if got := s.queryTimeout(c.ms); got != c.want {
			t.Errorf("queryTimeout(%d) = %v, want %v", c.ms, got, c.want)
		}
	}
}

func TestIngestBadInput(t *testing.T) {
	child := newFakeChild(t, 1)
	_, srv := newTestAggregator(t, Config{MaxBodyBytes: 1 << 20, MaxArrowBytes: 1000}, child)
	url := srv.URL + "/v1/ingest/t"
	gz := func(data []byte) []byte {
		var b bytes.Buffer
		w := gzip.NewWriter(&b)
		_, _ = w.Write(data)
		_ = w.Close()
		return b.Bytes()
	}
	cases := []struct {
		name   string
		body   []byte
		hdr    []string
		status int
		msg    string
	}{
		{"content type", []byte("a,b\n"), []string{"Content-Type", "text/csv"}, 415, `unsupported Content-Type "text/csv"`},
		{"encoding", []byte("{}\n"), []string{"Content-Encoding", "br"}, 415, `unsupported Content-Encoding "br"`},
		{"not gzip", []byte("{}\n"), []string{"Content-Encoding", "gzip"}, 400, "cannot read gzip body"},
		{"gzip bomb", gz(bytes.Repeat([]byte("{}\n"), 1<<20)), []string{"Content-Encoding", "gzip"}, 413, "over the 1048576 byte limit"},
		{"arrow too large", make([]byte, 2000), []string{"Content-Type", api.ContentTypeArrow}, 413, "Arrow stream is over the 1000 byte limit"},
		{"bad table", []byte("{}\n"), nil, 400, "invalid table name"},
	}
	for _, c := range cases {
		u := url
		if c.name == "bad table" {
			u = srv.URL + "/v1/ingest/1x"
		}
		status, _, body := post(t, u, c.body, c.hdr...)
		if msg := errorOf(t, body); status != c.status || !strings.Contains(msg, c.msg) {
			t.Errorf("%s: %d %q, want %d containing %q", c.name, status, msg, c.status, c.msg)
		}
	}
}

// TestIngestLongLine checks that a line too long to route is reported with its
// number while the lines around it are stored, with their own numbers.
func TestIngestLongLine(t *testing.T) {
	child := newFakeChild(t, 1)
	_, srv := newTestAggregator(t, Config{BatchBytes: 64}, child)
	body := "{\"a\":1}\n{\"a\":2}\n" + `{"s":"` + strings.Repeat("x", 300) + "\"}\n{\"a\":3}\n{\"bad\":1}\n{\"a\":4}\n"
	status, _, data := post(t, srv.URL+"/v1/ingest/t", []byte(body))
	var res api.IngestResult
	if err := json.Unmarshal(data, &res); err != nil || status != 200 {
		t.Fatalf("%d %s", status, data)
	}
	if res.Accepted != 4 || res.Rejected != 2 || len(res.Errors) != 2 {
		t.Fatalf("result %+v", res)
	}
	// Line 3 is the long one, refused by the router; the leaf rejects line 5.
	if e := res.Errors[0]; e.Line != 3 || !strings.Contains(e.Reason, "over the router's limit of 256") {
		t.Errorf("error 1: %+v", e)
	}
	if e := res.Errors[1]; e.Line != 5 || e.Reason != "bad row" {
		t.Errorf("error 2: %+v", e)
	}
	child.mu.Lock()
	defer child.mu.Unlock()
	for _, in := range child.ingests {
		if bytes.Contains(in.body, []byte("xxxx")) {
			t.Errorf("the long line reached the leaf: %q", in.body)
		}
	}
}

// TestIngestArrowPassThrough checks that an Arrow body reaches one leaf whole.
func TestIngestArrowPassThrough(t *testing.T) {
	child := newFakeChild(t, 1)
	_, srv := newTestAggregator(t, Config{BatchBytes: 16}, child)
	body := bytes.Repeat([]byte("arrow\nbytes\n"), 10) // lines are nothing to Arrow
	status, _, data := post(t, srv.URL+"/v1/ingest/t", body, "Content-Type", api.ContentTypeArrow)
	if status != 200 {
		t.Fatalf("%d %s", status, data)
	}
	child.mu.Lock()
	defer child.mu.Unlock()
	if len(child.ingests) != 1 || child.ingests[0].contentType != api.ContentTypeArrow || !bytes.Equal(child.ingests[0].body, body) {
		t.Errorf("leaf got %d requests: %+v", len(child.ingests), child.ingests)
	}
}

func TestIngestConcurrencyLimit(t *testing.T) {
	child := newFakeChild(t, 1)
	child.hold, child.held = make(chan struct{}), make(chan struct{}, 1)
	_, srv := newTestAggregator(t, Config{MaxConcurrentIngest: 1}, child)
	done := make(chan int)
	go func() {
		status, _, _ := post(t, srv.URL+"/v1/ingest/t", []byte("{}\n"))
		done <- status
	}()
	<-child.held // the first request holds the aggregator's only ingest slot
	status, hdr, body := post(t, srv.URL+"/v1/ingest/t", []byte("{}\n"))
	if msg := errorOf(t, body); status != 429 || hdr.Get("Retry-After") == "" || !strings.Contains(msg, "too many concurrent ingest requests") {
		t.Errorf("second ingest: %d %v %q", status, hdr, msg)
	}
	close(child.hold)
	if status := <-done; status != 200 {
		t.Errorf("held ingest: %d", status)
	}
}

// TestAggregatorAccess checks the aggregator's token rules and that it sends its
// peer token to its children.
func TestAggregatorAccess(t *testing.T) {
	const (
		ingestTok = "ingest-token-0123456789"
		queryTok  = "query-token-0123456789"
		peerTok   = "peer-token-0123456789"
	)
	child := newFakeChild(t, 2)
	_, srv := newTestAggregator(t, Config{Tokens: auth.Tokens{Ingest: ingestTok, Query: queryTok, Peer: peerTok}}, child)
	sql := []byte(`{"sql":"SELECT count(*) FROM t"}`)
	cases := []struct {
		path  string
		body  []byte
		token string
		want  int
	}{
		{"/v1/sql", sql, "", 401},
		{"/v1/sql", sql, ingestTok, 403},
		{"/v1/sql", sql, queryTok, 200},
		{"/v1/sql", sql, peerTok, 200},
		{"/v1/ingest/t", []byte("{}\n"), "", 401},
		{"/v1/ingest/t", []byte("{}\n"), queryTok, 403},
		{"/v1/ingest/t", []byte("{}\n"), ingestTok, 200},
		{"/v1/admin/anything", nil, queryTok, 404}, // no admin token: open, and no such route
	}
	for _, c := range cases {
		var hdr []string
		if c.token != "" {
			hdr = []string{"Authorization", "Bearer " + c.token}
		}
		status, h, body := post(t, srv.URL+c.path, c.body, hdr...)
		if status != c.want {
			t.Errorf("%s with %q: %d %s, want %d", c.path, c.token, status, body, c.want)
		}
		if (status == 401 || status == 403) && !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("%s: %d without WWW-Authenticate", c.path, status)
		}
	}
	child.mu.Lock()
	defer child.mu.Unlock()
	for _, a := range child.auth {
		if a != "Bearer "+peerTok {
			t.Errorf("the aggregator sent Authorization %q to its child, want the peer token", a)
		}
	}
	if _, err := New(Config{Children: []string{child.srv.URL}, Tokens: auth.Tokens{Query: "short"}}); err == nil {
		t.Error("New accepted a short token")
	}
}
