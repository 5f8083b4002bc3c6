package edgetest

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/apache/arrow/go/v15/arrow"
	"github.com/apache/arrow/go/v15/arrow/array"
	"github.com/apache/arrow/go/v15/arrow/ipc"
	"github.com/apache/arrow/go/v15/arrow/memory"
	"go.uber.org/goleak"

	"github.com/reef-db/reef/aggregator"
	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/internal/auth"
	"github.com/reef-db/reef/internal/testcert"
	"github.com/reef-db/reef/leaf"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	ingestTok = "ingest-0123456789abcdef"
	queryTok  = "query-0123456789abcdef"
	adminTok  = "admin-0123456789abcdef"
	peerTok   = "peer-0123456789abcdef"
)

var quiet = slog.New(slog.DiscardHandler)

// cluster is one leaf behind one aggregator, both over HTTPS.
type cluster struct {
	leaf    *leaf.Server
	leafURL string
	aggURL  string
	tls     *tls.Config // client config trusting the test CA
}

// serveTLS serves h over HTTPS with cfg until the test ends.
func serveTLS(t *testing.T, h http.Handler, cfg *tls.Config) string {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = cfg
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

func newCluster(t *testing.T, lcfg leaf.Config, acfg aggregator.Config) *cluster {
	t.Helper()
	dir := t.TempDir()
	certFile, keyFile, _ := testcert.Write(t, dir)
	serverTLS, err := auth.ServerTLS(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	clientTLS, err := auth.ClientTLS(certFile)
	if err != nil {
		t.Fatal(err)
	}
	lcfg.ID, lcfg.Logger = "edge-leaf", quiet
	l, err := leaf.New(lcfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	leafURL := serveTLS(t, l.Handler(), serverTLS)

	acfg.Children = []string{leafURL}
	acfg.TLS = clientTLS
	acfg.Logger = quiet
	acfg.HealthInterval = time.Hour
	a, err := aggregator.New(acfg)
	if err != nil {
		t.Fatal(err)
	}
	a.Start(context.Background())
	t.Cleanup(a.Close)
	aggURL := serveTLS(t, a.Handler(), serverTLS)
	return &cluster{leaf: l, leafURL: leafURL, aggURL: aggURL, tls: clientTLS}
}

// client returns a client of url trusting the test CA, sending token.
func (c *cluster) client(t *testing.T, url, token string) *api.Client {
	t.Helper()
	cl := api.NewClient(url)
	if err := cl.SetTLSConfig(c.tls); err != nil {
		t.Fatal(err)
	}
	cl.Token = token
	t.Cleanup(cl.HTTP.CloseIdleConnections)
	return cl
}

func status(err error) int {
	var ae *api.Error
	if errors.As(err, &ae) {
		return ae.Status
	}
	if err != nil {
		return -1
	}
	return 200
}

// TestAccessEndToEnd runs a leaf with peer and admin tokens behind an aggregator
// with ingest, query and peer tokens, all over TLS with a self-signed certificate.
func TestAccessEndToEnd(t *testing.T) {
	c := newCluster(t,
		leaf.Config{Tokens: auth.Tokens{Admin: adminTok, Peer: peerTok}},
		aggregator.Config{Tokens: auth.Tokens{Ingest: ingestTok, Query: queryTok, Peer: peerTok}})
	ctx := context.Background()
	rows := func(n int) io.Reader {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, `{"time":%d,"service":"s%d"}`+"\n", 1_700_000_000+i, i%3)
		}
		return strings.NewReader(b.String())
	}
	count := "SELECT count(*) FROM events"

	anon, writer, reader, admin := c.client(t, c.aggURL, ""), c.client(t, c.aggURL, ingestTok), c.client(t, c.aggURL, queryTok), c.client(t, c.aggURL, adminTok)
	steps := []struct {
		name string
		err  error
		want int
	}{}
	step := func(name string, err error, want int) {
		steps = append(steps, struct {
			name string
			err  error
			want int
		}{name, err, want})
	}
	_, err := anon.Ingest(ctx, "events", rows(3), "", "")
	step("ingest without a token", err, 401)
	_, err = anon.SQL(ctx, api.QueryRequest{SQL: count})
	step("query without a token", err, 401)
	_, err = reader.Ingest(ctx, "events", rows(3), "", "")
	step("ingest with the query token", err, 403)
	_, err = writer.SQL(ctx, api.QueryRequest{SQL: count})
	step("query with the ingest token", err, 403)
	_, err = admin.SQL(ctx, api.QueryRequest{SQL: count})
	step("query with a token the aggregator does not have", err, 401)
	_, err = writer.Ingest(ctx, "events", rows(10), "", "")
	step("ingest with the ingest token (aggregator → leaf over TLS with the peer token)", err, 200)
	res, err := reader.SQL(ctx, api.QueryRequest{SQL: count})
	step("query with the query token", err, 200)
	if err == nil && (len(res.Rows) != 1 || res.Rows[0][0] != int64(10) || res.Coverage.LeavesResponded != 1) {
		t.Errorf("count through the aggregator: %+v", res)
	}

	// The leaf takes writes and partial queries only from aggregators.
	leafWriter, leafReader, leafPeer, leafAdmin := c.client(t, c.leafURL, ingestTok), c.client(t, c.leafURL, queryTok), c.client(t, c.leafURL, peerTok), c.client(t, c.leafURL, adminTok)
	_, err = leafWriter.Ingest(ctx, "events", rows(1), "", "")
	step("ingest at the leaf with a token it does not know", err, 401)
	_, err = leafPeer.Ingest(ctx, "events", rows(1), "", "")
	step("ingest at the leaf with the peer token", err, 200)
	_, err = leafAdmin.Stats(ctx)
	step("leaf stats with the admin token", err, 200)
	_, err = leafReader.Stats(ctx)
	step("leaf stats with a query token it does not know", err, 401)
	err = leafPeer.Handoff(ctx)
	step("handoff with the peer token", err, 403)
	err = leafAdmin.Handoff(ctx)
	step("handoff with the admin token", err, 200)

	for _, s := range steps {
		if got := status(s.err); got != s.want {
			t.Errorf("%s: %d (%v), want %d", s.name, got, s.err, s.want)
		}
	}
	// Without trusting the CA, nothing gets through.
	plain := api.NewClient(c.aggURL)
	defer plain.HTTP.CloseIdleConnections()
	if err := plain.Ready(ctx); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("client without the CA: %v", err)
	}
}

func arrowEvents(t *testing.T, n int) []byte {
	t.Helper()
	schema := arrow.NewSchema([]arrow.Field{
		{Name: "time", Type: &arrow.TimestampType{Unit: arrow.Second}},
		{Name: "service", Type: &arrow.DictionaryType{IndexType: arrow.PrimitiveTypes.Int8, ValueType: arrow.BinaryTypes.String}},
		{Name: "latency", Type: arrow.PrimitiveTypes.Float64, Nullable: true},
	}, nil)
	b := array.NewRecordBuilder(memory.DefaultAllocator, schema)
	defer b.Release()
	for i := range n {
		b.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(1_700_000_000 + i))
		_ = b.Field(1).(*array.BinaryDictionaryBuilder).AppendString(fmt.Sprintf("s%d", i%3))
		if i%5 == 0 {
			b.Field(2).(*array.Float64Builder).AppendNull()
		} else {
			b.Field(2).(*array.Float64Builder).Append(float64(i) / 2)
		}
	}
	rec := b.NewRecord()
	defer rec.Release()
	var buf bytes.Buffer
	w := ipc.NewWriter(&buf, ipc.WithSchema(schema))
	if err := w.Write(rec); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// TestBadInputEndToEnd sends bad rows, an Arrow stream and oversized queries
// through the aggregator to a real leaf.
func TestBadInputEndToEnd(t *testing.T) {
	c := newCluster(t, leaf.Config{MaxGroups: 50, MaxColumns: 5},
		aggregator.Config{MaxResultRows: 20})
	ctx := context.Background()
	cl := c.client(t, c.aggURL, "")

	body := strings.Join([]string{
		`{"time":1700000000,"service":"a","n":1}`,
		`{"time":1700000001,"service":"b","n":"two"}`,                               // wrong type: the field is rejected
		`{"time":1700000002,"service":`,                                             // malformed JSON
		`[1,2,3]`,                                                                   // not an object
		"{\"time\":1700000003,\"service\":\"\xff\"}",                                // invalid UTF-8
		`{"time":1700000004,"a":1,"b":2,"c":3,"d":4}`,                               // too many columns
		`{"time":1700000005,"x":{"y":{"z":{"w":{"v":{"u":{"t":{"s":{"r":1}}}}}}}}}`, // nested too deep
		`{"time":1700000006,"service":"` + strings.Repeat("x", 70_000) + `"}`,       // huge string
		"",
		`{"time":1700000007,"service":"c","n":7}`,
	}, "\n")
	res, err := cl.Ingest(ctx, "events", strings.NewReader(body), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Accepted != 7 || res.Rejected != 2 {
		t.Errorf("accepted %d rejected %d, want 7 and 2: %+v", res.Accepted, res.Rejected, res.Errors)
	}
	want := []struct {
		line   int
		field  string
		reason string
	}{
		{2, "n", "cannot store a string in column of type int"},
		{3, "", "invalid JSON"},
		{4, "", "not an object"},
		{5, "service", "not valid UTF-8"},
		{6, "c", "maximum of 5 columns"},
		{6, "d", "maximum of 5 columns"},
		{7, "x.y.z.w.v.u.t.s", "nest deeper than 8"},
		{8, "service", "70000 bytes long, the limit is 65536"},
	}
	if len(res.Errors) != len(want) {
		t.Fatalf("errors %+v", res.Errors)
	}
	for i, w := range want {
		e := res.Errors[i]
		if e.Line != w.line || e.Field != w.field || !strings.Contains(e.Reason, w.reason) {
			t.Errorf("error %d: %+v, want line %d field %q reason %q", i, e, w.line, w.field, w.reason)
		}
	}

	// An Arrow stream goes whole through the aggregator to the leaf.
	ares, err := cl.Ingest(ctx, "metrics", bytes.NewReader(arrowEvents(t, 300)), api.ContentTypeArrow, "")
	if err != nil || ares.Accepted != 300 {
		t.Fatalf("arrow ingest: %+v, %v", ares, err)
	}
	qres, err := cl.SQL(ctx, api.QueryRequest{SQL: "SELECT service, count(*), count(latency) FROM metrics GROUP BY service"})
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(qres.Rows); got != "[[s0 100 80] [s1 100 80] [s2 100 80]]" {
		t.Errorf("arrow rows: %s", got)
	}
	_, err = cl.Ingest(ctx, "metrics", bytes.NewReader([]byte("not arrow")), api.ContentTypeArrow, "")
	if status(err) != 400 || !strings.Contains(err.Error(), "cannot read Arrow IPC stream") {
		t.Errorf("bad arrow through the aggregator: %v", err)
	}

	// Group-by cardinality over the leaf's MaxGroups (50): flagged, not an error;
	// results over MaxResultRows (20): cut and flagged.
	var many strings.Builder
	for i := range 200 {
		fmt.Fprintf(&many, `{"time":%d,"user":"u%03d"}`+"\n", 1_700_000_000+i, i)
	}
	if _, err := cl.Ingest(ctx, "users", strings.NewReader(many.String()), "", ""); err != nil {
		t.Fatal(err)
	}
	for _, q := range []struct {
		sql       string
		rows      int
		truncated bool
	}{
		{"SELECT user, count(*) FROM users GROUP BY user", 20, true},
		{"SELECT count(DISTINCT user) FROM users", 1, false},
		{"SELECT user FROM users LIMIT 100", 20, true},
		{"SELECT user FROM users LIMIT 10", 10, false},
	} {
		r, err := cl.SQL(ctx, api.QueryRequest{SQL: q.sql})
		if err != nil || len(r.Rows) != q.rows || r.Truncated != q.truncated {
			t.Errorf("%s: %v rows, truncated %v, err %v; want %d rows, truncated %v", q.sql, len(rowsOf(r)), r != nil && r.Truncated, err, q.rows, q.truncated)
		}
	}

	// Query errors name what and where.
	for _, q := range []struct {
		sql    string
		status int
		msg    string
	}{
		{"SELECT count(*) FROM users WHERE", 400, "syntax error at position 33"},
		{"SELECT count(*) FROM nope", 404, `unknown table "nope"`},
		{"SELECT sum(user) FROM users", 400, `cannot sum column "user" of type string`},
		{"SELECT count(*) FROM users WHERE usr = 'a'", 400, `unknown column "usr"`},
		{"SELECT count(*) FROM users WHERE time > 10/0", 400, "division by zero at position 43"},
		{"SELECT count(*) FROM users WHERE user ~ '[a-'", 400, "cannot compile regular expression"},
	} {
		_, err := cl.SQL(ctx, api.QueryRequest{SQL: q.sql})
		if status(err) != q.status || !strings.Contains(err.Error(), q.msg) {
			t.Errorf("%s: %v, want %d %q", q.sql, err, q.status, q.msg)
		}
	}
}

func rowsOf(r *api.QueryResult) [][]any {
	if r == nil {
		return nil
	}
	return r.Rows
}

// TestBodyLimits checks 413s at both tiers and 415s for what reef does not read.
func TestBodyLimits(t *testing.T) {
	c := newCluster(t, leaf.Config{MaxBodyBytes: 4096}, aggregator.Config{MaxBodyBytes: 1 << 20, MaxArrowBytes: 8192})
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: c.tls}}
	defer hc.CloseIdleConnections()
	post := func(url string, body []byte, hdr ...string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var e api.Error
		data, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(data, &e)
		return resp.StatusCode, e.Message
	}
	big := bytes.Repeat([]byte(`{"a":1}`+"\n"), 1000)
	for _, tc := range []struct {
		name   string
		url    string
		body   []byte
		hdr    []string
		status int
		msg    string
	}{
		{"leaf body over the limit", c.leafURL + "/v1/ingest/t", big, nil, 413, "the limit is 4096"},
		{"aggregator arrow over the limit", c.aggURL + "/v1/ingest/t", make([]byte, 10000), []string{"Content-Type", api.ContentTypeArrow}, 413, "Arrow stream is over the 8192 byte limit"},
		{"leaf: wrong content type", c.leafURL + "/v1/ingest/t", []byte("a,b"), []string{"Content-Type", "text/csv"}, 415, "unsupported Content-Type"},
		{"aggregator: wrong content type", c.aggURL + "/v1/ingest/t", []byte("a,b"), []string{"Content-Type", "text/csv"}, 415, "unsupported Content-Type"},
		{"leaf: wrong encoding", c.leafURL + "/v1/ingest/t", []byte("{}"), []string{"Content-Encoding", "br"}, 415, "unsupported Content-Encoding"},
		{"aggregator: wrong encoding", c.aggURL + "/v1/ingest/t", []byte("{}"), []string{"Content-Encoding", "br"}, 415, "unsupported Content-Encoding"},
	} {
		status, msg := post(tc.url, tc.body, tc.hdr...)
		if status != tc.status || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %d %q, want %d containing %q", tc.name, status, msg, tc.status, tc.msg)
		}
	}
	// Through the aggregator, the leaf's 413 for an oversized batch reaches the writer.
	status, msg := post(c.aggURL+"/v1/ingest/t", big)
	if status != 413 || !strings.Contains(msg, "the limit is 4096") {
		t.Errorf("batch over the leaf's limit through the aggregator: %d %q", status, msg)
	}
}
