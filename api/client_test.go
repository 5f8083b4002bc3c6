package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reef-db/reef/query/agg"
	"github.com/reef-db/reef/query/plan"
)

// newTestClient starts a server with handler and returns a client for it; both are
// shut down when the test ends.
func newTestClient(t *testing.T, handler http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(handler)
	c := NewClient(srv.URL)
	t.Cleanup(func() {
		c.HTTP.CloseIdleConnections()
		srv.Close()
	})
	return c
}

func TestNewClientBaseURL(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := NewClient(in).BaseURL; got != want {
			t.Errorf("NewClient(%q).BaseURL = %q, want %q", in, got, want)
		}
	}
	f("127.0.0.1:7070", "http://127.0.0.1:7070")
	f("http://h:1/", "http://h:1")
	f("https://h:1//", "https://h:1")
}

func TestSQL(t *testing.T) {
	var got QueryRequest
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/sql" {
			http.Error(w, "wrong route "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		if a := r.Header.Get("Authorization"); a != "Bearer s3cret" {
			http.Error(w, "bad auth "+a, http.StatusUnauthorized)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"columns":[{"name":"time","type":"int"},{"name":"avg","type":"float"},`+
			`{"name":"host","type":"string"},{"name":"tags","type":"set"}],`+
			`"rows":[[9007199254740993,1.5,"a",["x","y"]],[60,2,null,[]]],`+
			`"coverage":{"leaves_total":8,"leaves_responded":7,"rows_scanned":100,"rows_estimated_total":120,"percent":83.3},`+
			`"partial":true,"errors":[{"node":"leaf-3","error":"timeout"}],"timings":{"total_ms":12.5}}`)
	})
	c.Token = "s3cret"
	res, err := c.SQL(context.Background(), QueryRequest{SQL: "SELECT 1", TimeoutMS: 500, MinCoverage: 50, Format: "csv"})
	if err != nil {
		t.Fatalf("SQL: %v", err)
	}
	want := QueryRequest{SQL: "SELECT 1", TimeoutMS: 500, MinCoverage: 50, Format: "json"}
	if got != want {
		t.Errorf("server got request %+v, want %+v", got, want)
	}
	wantRows := [][]any{
		{int64(9007199254740993), 1.5, "a", []any{"x", "y"}},
		{int64(60), 2.0, nil, []any{}},
	}
	if !reflect.DeepEqual(res.Rows, wantRows) {
		t.Errorf("rows = %#v, want %#v", res.Rows, wantRows)
	}
	if !res.Partial || res.Coverage.LeavesResponded != 7 || len(res.Errors) != 1 || res.Timings.TotalMS != 12.5 {
		t.Errorf("result metadata not decoded: %+v", res)
	}
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name     string
		status   int
		body     string
		wantMsg  string
		wantPos  int
		wantCall func(*Client) error
	}{
		{"json error with position", 400, `{"error":"unknown column \"x\"","position":8,"query":"SELECT x FROM t"}`,
			`unknown column "x"`, 8, nil},
		{"plain text", 503, "leaf is draining\nmore", "HTTP 503 Service Unavailable: leaf is draining", 0, nil},
		{"empty body", 502, "", "HTTP 502 Bad Gateway", 0, nil},
		{"html body", 500, "<html><body>oops</body></html>", "HTTP 500 Internal Server Error", 0, nil},
		{"json without message", 429, `{"accepted":0}`, "HTTP 429 Too Many Requests: {\"accepted\":0}", 0, nil},
		{"negative position", 400, `{"error":"bad","position":-4}`, "bad", 0, nil},
	}
	calls := map[string]func(c *Client) error{
		"SQL":    func(c *Client) error { _, err := c.SQL(context.Background(), QueryRequest{SQL: "x"}); return err },
		"Tables": func(c *Client) error { _, err := c.Tables(context.Background()); return err },
		"Table":  func(c *Client) error { _, err := c.Table(context.Background(), "t"); return err },
		"Stats":  func(c *Client) error { _, err := c.Stats(context.Background()); return err },
		"Ingest": func(c *Client) error {
			_, err := c.Ingest(context.Background(), "t", strings.NewReader("{}"), "", "")
			return err
		},
		"SQLRaw": func(c *Client) error {
			_, _, err := c.SQLRaw(context.Background(), QueryRequest{SQL: "x", Format: "csv"})
			return err
		},
		"Partial": func(c *Client) error { _, err := c.Partial(context.Background(), PartialRequest{}); return err },
		"Handoff": func(c *Client) error { return c.Handoff(context.Background()) },
		"Ready":   func(c *Client) error { return c.Ready(context.Background()) },
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				io.WriteString(w, tc.body)
			})
			for name, call := range calls {
				err := call(c)
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("%s: error %v (%T) is not an *Error", name, err, err)
				}
				if e.Status != tc.status || e.Message != tc.wantMsg || e.Position != tc.wantPos {
					t.Errorf("%s: got status %d message %q position %d, want %d %q %d",
						name, e.Status, e.Message, e.Position, tc.status, tc.wantMsg, tc.wantPos)
				}
			}
		})
	}
}

func TestIngest(t *testing.T) {
	type seen struct{ path, ctype, batch, body string }
	var s seen
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		s = seen{r.URL.EscapedPath(), r.Header.Get("Content-Type"), r.Header.Get(HeaderBatchID), string(b)}
		io.WriteString(w, `{"table":"my events","accepted":2,"rejected":1,"errors":[{"line":3,"reason":"not JSON"}],"batch_id":"b1"}`)
	})
	f := func(ctype, batch string, want seen) {
		t.Helper()
		res, err := c.Ingest(context.Background(), "my events", strings.NewReader("{}\n{}\nx\n"), ctype, batch)
		if err != nil {
			t.Fatalf("Ingest: %v", err)
		}
		if s != want {
			t.Errorf("server saw %+v, want %+v", s, want)
		}
		if res.Accepted != 2 || res.Rejected != 1 || len(res.Errors) != 1 || res.Errors[0].Line != 3 {
			t.Errorf("result not decoded: %+v", res)
		}
	}
	f("", "b1", seen{"/v1/ingest/my%20events", "application/x-ndjson", "b1", "{}\n{}\nx\n"})
	f(ContentTypeArrow, "", seen{"/v1/ingest/my%20events", ContentTypeArrow, "", "{}\n{}\nx\n"})

	if _, err := c.Ingest(context.Background(), "", strings.NewReader(""), "", ""); err == nil {
		t.Error("Ingest with empty table name: no error")
	}
}

func TestTables(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/tables":
			io.WriteString(w, `{"tables":[{"name":"events","rows":10,"columns":[{"name":"time","type":"int"}]},{"name":"logs","rows":3}]}`)
		case "/v1/tables/events":
			io.WriteString(w, `{"name":"events","rows":10,"min_time":5,"max_time":9,"columns":[{"name":"time","type":"int"},{"name":"host","type":"string"}]}`)
		default:
			w.WriteHeader(http.StatusNotFound)
			io.WriteString(w, `{"error":"no table \"nope\""}`)
		}
	})
	ts, err := c.Tables(context.Background())
	if err != nil {
		t.Fatalf("Tables: %v", err)
	}
	if len(ts) != 2 || ts[0].Name != "events" || ts[1].Rows != 3 {
		t.Errorf("Tables = %+v", ts)
	}
	tb, err := c.Table(context.Background(), "events")
	if err != nil {
		t.Fatalf("Table: %v", err)
	}
	want := TableStats{Name: "events", Rows: 10, MinTime: 5, MaxTime: 9,
		Columns: []ColumnInfo{{"time", "int"}, {"host", "string"}}}
	if !reflect.DeepEqual(*tb, want) {
		t.Errorf("Table = %+v, want %+v", *tb, want)
	}
	_, err = c.Table(context.Background(), "nope")
	var e *Error
	if !errors.As(err, &e) || e.Status != 404 || e.Message != `no table "nope"` {
		t.Errorf("Table(nope) error = %v", err)
	}
}

func TestSQLRaw(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		var req QueryRequest
		json.NewDecoder(r.Body).Decode(&req)
		w.Header().Set("Content-Type", "text/csv")
		io.WriteString(w, "format="+req.Format+"\n")
	})
	f := func(format, want string) {
		t.Helper()
		body, ctype, err := c.SQLRaw(context.Background(), QueryRequest{SQL: "x", Format: format})
		if err != nil {
			t.Fatalf("SQLRaw: %v", err)
		}
		defer body.Close()
		b, err := io.ReadAll(body)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if string(b) != want || ctype != "text/csv" {
			t.Errorf("got %q (%s), want %q", b, ctype, want)
		}
	}
	f("csv", "format=csv\n")
	f("", "format=json\n")
}

func TestPartial(t *testing.T) {
	want := &agg.Partial{
		Keys:            [][]plan.Value{{plan.String("a")}},
		States:          [][]agg.State{{&agg.CountState{N: 42}}},
		LeavesTotal:     1,
		LeavesResponded: 1,
		RowsInRange:     100,
		RowsEstimated:   100,
		RowsMatched:     42,
	}
	var got PartialRequest
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/partial" {
			http.NotFound(w, r)
			return
		}
		if err := json.NewDecoder(r.Body).Decode(&got); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", ContentTypePartial)
		w.Write(agg.AppendEncode(nil, want))
	})
	req := PartialRequest{Plan: plan.Plan{Table: "events", Limit: 10}, TimeoutMS: 250}
	p, err := c.Partial(context.Background(), req)
	if err != nil {
		t.Fatalf("Partial: %v", err)
	}
	if got.Plan.Table != "events" || got.TimeoutMS != 250 {
		t.Errorf("server got %+v", got)
	}
	if !reflect.DeepEqual(p.Keys, want.Keys) || p.RowsMatched != 42 || len(p.States) != 1 || len(p.States[0]) != 1 {
		t.Fatalf("Partial = %+v, want %+v", p, want)
	}
	if n, ok := p.States[0][0].(*agg.CountState); !ok || n.N != 42 {
		t.Errorf("state = %#v, want count 42", p.States[0][0])
	}
}

func TestPartialCorrupt(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", ContentTypePartial)
		io.WriteString(w, "RFPT garbage")
	})
	_, err := c.Partial(context.Background(), PartialRequest{})
	if !errors.Is(err, agg.ErrCorrupt) {
		t.Errorf("Partial with a corrupt body: error = %v, want agg.ErrCorrupt", err)
	}
}

func TestPartialContentType(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{}`)
	})
	_, err := c.Partial(context.Background(), PartialRequest{})
	if err == nil || !strings.Contains(err.Error(), "content type") {
		t.Errorf("Partial with a JSON answer: error = %v, want a content type error", err)
	}
}

func TestReadyAndHandoff(t *testing.T) {
	ready := true
	var handoffs int
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/readyz" && ready:
			io.WriteString(w, "ok")
		case r.URL.Path == "/readyz":
			http.Error(w, "draining", http.StatusServiceUnavailable)
		case r.URL.Path == "/v1/admin/handoff" && r.Method == http.MethodPost:
			handoffs++
			w.WriteHeader(http.StatusAccepted)
		default:
			http.NotFound(w, r)
		}
	})
	if err := c.Ready(context.Background()); err != nil {
		t.Errorf("Ready: %v", err)
	}
	if err := c.Handoff(context.Background()); err != nil || handoffs != 1 {
		t.Errorf("Handoff: err %v, %d handoffs seen", err, handoffs)
	}
	ready = false
	var e *Error
	if err := c.Ready(context.Background()); !errors.As(err, &e) || e.Status != 503 {
		t.Errorf("Ready when draining = %v, want a 503 *Error", err)
	}
}

func TestCancelAbortsRequest(t *testing.T) {
	defer goleak.VerifyNone(t)
	started := make(chan struct{})
	aborted := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The server notices a closed connection only once the body is consumed.
		io.Copy(io.Discard, r.Body)
		close(started)
		select {
		case <-r.Context().Done():
			close(aborted)
		case <-time.After(time.Minute):
		}
	}))
	defer srv.Close()
	c := NewClient(srv.URL)
	defer c.HTTP.CloseIdleConnections()

	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-started
		cancel()
	}()
	_, err := c.SQL(ctx, QueryRequest{SQL: "SELECT slow"})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("SQL after cancel: error = %v, want context.Canceled", err)
	}
	select {
	case <-aborted:
	case <-time.After(10 * time.Second):
		t.Error("server never saw the request aborted")
	}
}

func TestLimitReader(t *testing.T) {
	f := func(data string, limit int64, wantErr bool) {
		t.Helper()
		b, err := io.ReadAll(newLimitReader(strings.NewReader(data), limit))
		if gotErr := errors.Is(err, ErrTooLarge); gotErr != wantErr {
			t.Errorf("limit %d over %q: err = %v, want ErrTooLarge %v", limit, data, err, wantErr)
		}
		if !wantErr && string(b) != data {
			t.Errorf("limit %d over %q: read %q", limit, data, b)
		}
	}
	f("", 0, false)
	f("abc", 3, false)
	f("abc", 10, false)
	f("abcd", 3, true)
	f("a", 0, true)
}

func TestResultTooLarge(t *testing.T) {
	c := newTestClient(t, func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"columns":[],"rows":[]}`)
	})
	// Exercise the bound through the decoder with a tiny limit.
	_, err := DecodeQueryResult(newLimitReader(strings.NewReader(`{"columns":[],"rows":[[1,2,3]]}`), 10))
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("decode over limit: err = %v, want ErrTooLarge", err)
	}
	if _, err := c.SQL(context.Background(), QueryRequest{SQL: "x"}); err != nil {
		t.Errorf("SQL under the limit: %v", err)
	}
}

func FuzzDecodeError(f *testing.F) {
	f.Add(400, []byte(`{"error":"bad","position":3}`))
	f.Add(503, []byte("draining"))
	f.Add(999, []byte("\xff\xfe"))
	f.Add(-1, []byte(`{"error":""}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		e := DecodeError(status, body)
		if e.Message == "" || e.Status != status || e.Position < 0 {
			t.Errorf("DecodeError(%d, %q) = %+v", status, body, e)
		}
	})
}

func FuzzDecodeQueryResult(f *testing.F) {
	f.Add([]byte(`{"columns":[{"name":"a","type":"int"}],"rows":[[1],[1e400],[1.5],["x"],[[1,{"k":2}]]]}`))
	f.Add([]byte(`{"rows":[[1,2,3]]}`))
	f.Add([]byte(`{"columns":[{"name":"a","type":"float"}],"rows":[[99999999999999999999999]]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		res, err := DecodeQueryResult(bytes.NewReader(data))
		if err != nil {
			return
		}
		for _, row := range res.Rows {
			for _, cell := range row {
				if _, ok := cell.(json.Number); ok {
					t.Fatalf("cell %v left as json.Number", cell)
				}
			}
		}
	})
}

func BenchmarkDecodeQueryResult(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"columns":[{"name":"host","type":"string"},{"name":"count","type":"int"},{"name":"p99","type":"float"}],"rows":[`)
	for i := range 10_000 {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(`["web-1",123456789,12.5]`)
	}
	sb.WriteString(`],"coverage":{"leaves_total":8,"leaves_responded":8,"percent":100}}`)
	data := []byte(sb.String())
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeQueryResult(bytes.NewReader(data)); err != nil {
			b.Fatal(err)
		}
	}
}
