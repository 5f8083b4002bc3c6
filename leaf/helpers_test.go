package leaf

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/reef-db/reef/api"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testNow is the arrival time of decoder-level test batches.
var testNow = time.Unix(1_700_000_000, 0)

// testConfig is a leaf config whose background work never fires on its own.
func testConfig() Config {
	return Config{
		ID:                "t1",
		Logger:            slog.New(slog.DiscardHandler),
		SealAge:           time.Hour,
		RetentionInterval: time.Hour,
	}
}

// newTestStore returns a store with cfg's limits, without a server.
func newTestStore(t *testing.T, cfg Config) *store {
	t.Helper()
	cfg, err := cfg.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	st := newStore(&cfg, heapStore{}, newMetrics())
	t.Cleanup(st.close)
	return st
}

// decodeBody decodes body into table "t" of st as one batch arriving at testNow.
func decodeBody(t *testing.T, st *store, body string) api.IngestResult {
	t.Helper()
	var res api.IngestResult
	d := newDecoder(st.cfg)
	d.reset(&res, testNow)
	if err := d.ingest(st, "t", []byte(body)); err != nil {
		t.Fatalf("ingest: %v", err)
	}
	return res
}

// tableRows reads every row of a table back (sealed blocks first, then the open
// one), leaving out nulls.
func tableRows(t *testing.T, st *store, name string) []map[string]any {
	t.Helper()
	snap := st.snapshot(name)
	defer snap.release()
	var out []map[string]any
	for _, b := range snap.blocks {
		for i := 0; i < b.Rows; i++ {
			m := map[string]any{}
			for ci := range b.Columns {
				c := &b.Columns[ci]
				if v := c.Value(i); v != nil {
					m[c.Name] = v
				}
			}
			out = append(out, m)
		}
	}
	return out
}

// testLeaf is a leaf served over HTTP for a test.
type testLeaf struct {
	s   *Server
	srv *httptest.Server
	c   *api.Client
}

func newTestLeaf(t *testing.T, cfg Config) *testLeaf {
	t.Helper()
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s.Handler())
	c := api.NewClient(srv.URL)
	t.Cleanup(func() {
		c.HTTP.CloseIdleConnections()
		srv.Close()
		if err := s.Close(); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return &testLeaf{s: s, srv: srv, c: c}
}

// response is an HTTP answer read whole.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) ingestResult(t *testing.T) api.IngestResult {
	t.Helper()
	var res api.IngestResult
	if err := json.Unmarshal(r.body, &res); err != nil {
		t.Fatalf("cannot decode ingest result %q: %v", r.body, err)
	}
	return res
}

// errorMessage decodes the JSON api.Error every 4xx/5xx must carry.
func (r response) errorMessage(t *testing.T) string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error answer has Content-Type %q, want application/json", ct)
	}
	var e api.Error
	if err := json.Unmarshal(r.body, &e); err != nil || e.Message == "" {
		t.Fatalf("error answer %q is not a JSON api.Error (%v)", r.body, err)
	}
	return e.Message
}

// do sends a request to the leaf; hdr holds header pairs.
func (l *testLeaf) do(t *testing.T, method, path string, body []byte, hdr ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, l.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := l.c.HTTP.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: data}
}

// ingest posts an NDJSON body and requires a 200.
func (l *testLeaf) ingest(t *testing.T, table, body string, hdr ...string) api.IngestResult {
	t.Helper()
	hdr = append([]string{"Content-Type", api.ContentTypeNDJSON}, hdr...)
	r := l.do(t, http.MethodPost, "/v1/ingest/"+table, []byte(body), hdr...)
	if r.status != http.StatusOK {
		t.Fatalf("ingest into %s: status %d: %s", table, r.status, r.body)
	}
	return r.ingestResult(t)
}

// cols makes a schema from name, type pairs.
func cols(pairs ...string) []api.ColumnInfo {
	var out []api.ColumnInfo
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, api.ColumnInfo{Name: pairs[i], Type: pairs[i+1]})
	}
	return out
}
