package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/reef-db/reef/query/agg"
)

// Bounds on what the client reads from a server.
const (
	// MaxResultBytes bounds a result body (query result, partial states, stats).
	MaxResultBytes = 1 << 30
	// MaxErrorBytes bounds the body of a non-2xx answer.
	MaxErrorBytes = 1 << 20
	// drainBytes is how much of an unread body is discarded so that the connection
	// can be reused; a longer rest closes the connection instead.
	drainBytes = 64 << 10
)

// ContentTypeNDJSON is the default media type of an ingest body.
const ContentTypeNDJSON = "application/x-ndjson"

// ErrTooLarge is returned when a response body exceeds its bound.
var ErrTooLarge = errors.New("response body too large")

// Client talks to a leaf or an aggregator over HTTP. Its zero value is not usable;
// make one with NewClient. A Client is safe for concurrent use as long as its fields
// are not changed after the first request.
//
// Every method takes a context: its deadline or cancellation aborts the HTTP request,
// which in turn makes the server stop working on it. The Client itself sets no
// overall timeout.
type Client struct {
	// BaseURL is the server's root, e.g. "http://127.0.0.1:7070", without a trailing
	// slash.
	BaseURL string
	// HTTP does the requests.
	HTTP *http.Client
	// Token, when not empty, is sent as "Authorization: Bearer <Token>".
	Token string
}

// NewClient returns a Client for the server at baseURL. A baseURL without a scheme
// ("127.0.0.1:7070") means http. The client keeps a pool of idle connections per host
// and times out only the steps that cannot take long for a healthy server (dialing,
// the TLS handshake); how long a request may take is up to the caller's context.
func NewClient(baseURL string) *Client {
	if baseURL != "" && !strings.Contains(baseURL, "://") {
		baseURL = "http://" + baseURL
	}
	tr := &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &Client{
		BaseURL: strings.TrimRight(baseURL, "/"),
		HTTP:    &http.Client{Transport: tr},
	}
}

// Ingest posts one batch of rows to POST /v1/ingest/{table}. contentType defaults to
// application/x-ndjson; a non-empty batchID is sent in HeaderBatchID so that a retry
// of the same batch is not stored twice.
func (c *Client) Ingest(ctx context.Context, table string, body io.Reader, contentType, batchID string) (*IngestResult, error) {
	if table == "" {
		return nil, errors.New("cannot ingest: empty table name")
	}
	if contentType == "" {
		contentType = ContentTypeNDJSON
	}
	h := http.Header{}
	h.Set("Content-Type", contentType)
	if batchID != "" {
		h.Set(HeaderBatchID, batchID)
	}
	var res IngestResult
	if err := c.doJSON(ctx, http.MethodPost, "/v1/ingest/"+url.PathEscape(table), body, h, &res); err != nil {
		return nil, err
	}
	return &res, nil
}

// SQL runs a query through POST /v1/sql and decodes the JSON result; req.Format is
// ignored (always json). Result cells are nil, int64 (columns of type int), float64,
// string, bool, or []any for set values, so integers above 2^53 keep every digit.
// A partial answer is a result, not an error: check QueryResult.Partial.
func (c *Client) SQL(ctx context.Context, req QueryRequest) (*QueryResult, error) {
	req.Format = "json"
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("cannot encode query request: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", "application/json")
	resp, err := c.do(ctx, http.MethodPost, "/v1/sql", bytes.NewReader(body), h)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp.Body)
	res, err := DecodeQueryResult(newLimitReader(resp.Body, MaxResultBytes))
	if err != nil {
		return nil, fmt.Errorf("cannot read result of POST /v1/sql: %w", err)
	}
	return res, nil
}

// DecodeQueryResult decodes a JSON QueryResult the way Client.SQL does: numbers in
// int columns become int64, other numbers float64.
func DecodeQueryResult(r io.Reader) (*QueryResult, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var res QueryResult
	if err := dec.Decode(&res); err != nil {
		return nil, fmt.Errorf("cannot decode query result: %w", err)
	}
	for _, row := range res.Rows {
		for i, cell := range row {
			typ := ""
			if i < len(res.Columns) {
				typ = res.Columns[i].Type
			}
			row[i] = normalizeCell(cell, typ)
		}
	}
	return &res, nil
}

// normalizeCell turns the json.Numbers that a UseNumber decoder produced into int64
// (int columns, when the number is integral) or float64.
func normalizeCell(v any, typ string) any {
	switch v := v.(type) {
	case json.Number:
		if typ == "int" {
			if i, err := v.Int64(); err == nil {
				return i
			}
		}
		f, err := v.Float64()
		if err != nil {
			// Out of float64 range: keep the digits rather than lose the value.
			return v.String()
		}
		return f
	case []any:
		for i := range v {
			v[i] = normalizeCell(v[i], "")
		}
		return v
	case map[string]any:
		for k, e := range v {
			v[k] = normalizeCell(e, "")
		}
		return v
	}
	return v
}

// SQLRaw runs a query through POST /v1/sql in req.Format (csv, ndjson, arrow or json;
// empty means json) and returns the response body unread with its content type. The
// caller must close the body. Reading more than MaxResultBytes from it fails with
// ErrTooLarge.
func (c *Client) SQLRaw(ctx context.Context, req QueryRequest) (io.ReadCloser, string, error) {
	if req.Format == "" {
		req.Format = "json"
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, "", fmt.Errorf("cannot encode query request: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	resp, err := c.do(ctx, http.MethodPost, "/v1/sql", bytes.NewReader(body), h)
	if err != nil {
		return nil, "", err
	}
	rc := struct {
		io.Reader
		io.Closer
	}{newLimitReader(resp.Body, MaxResultBytes), resp.Body}
	return rc, resp.Header.Get("Content-Type"), nil
}

// Partial sends a plan to POST /v1/partial and decodes the binary partial states
// (ContentTypePartial) with agg.Decode.
func (c *Client) Partial(ctx context.Context, req PartialRequest) (*agg.Partial, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("cannot encode partial request: %w", err)
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("Accept", ContentTypePartial)
	resp, err := c.do(ctx, http.MethodPost, "/v1/partial", bytes.NewReader(body), h)
	if err != nil {
		return nil, err
	}
	defer closeBody(resp.Body)
	if ct := resp.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, ContentTypePartial) {
		return nil, fmt.Errorf("cannot read partial from %s: content type is %q, want %q", c.BaseURL, ct, ContentTypePartial)
	}
	data, err := io.ReadAll(newLimitReader(resp.Body, MaxResultBytes))
	if err != nil {
		return nil, fmt.Errorf("cannot read partial from %s: %w", c.BaseURL, err)
	}
	p, err := agg.Decode(data)
	if err != nil {
		return nil, fmt.Errorf("cannot decode partial from %s: %w", c.BaseURL, err)
	}
	return p, nil
}

// Stats fetches GET /v1/stats (leaves).
func (c *Client) Stats(ctx context.Context) (*Stats, error) {
	var s Stats
	if err := c.doJSON(ctx, http.MethodGet, "/v1/stats", nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// StatsFresh is Stats with ?refresh=1: an aggregator first asks its own children
// for their current stats instead of answering with what it last saw. Leaves
// answer as for Stats.
func (c *Client) StatsFresh(ctx context.Context) (*Stats, error) {
	var s Stats
	if err := c.doJSON(ctx, http.MethodGet, "/v1/stats?refresh=1", nil, nil, &s); err != nil {
		return nil, err
	}
	return &s, nil
}

// tablesResponse is the body of GET /v1/tables.
type tablesResponse struct {
	Tables []TableStats `json:"tables"`
}

// Tables fetches GET /v1/tables: every table with its rows, bytes, time range and
// columns.
func (c *Client) Tables(ctx context.Context) ([]TableStats, error) {
	var r tablesResponse
	if err := c.doJSON(ctx, http.MethodGet, "/v1/tables", nil, nil, &r); err != nil {
		return nil, err
	}
	return r.Tables, nil
}

// Table fetches GET /v1/tables/{name}. An unknown table is an *Error with Status 404.
func (c *Client) Table(ctx context.Context, name string) (*TableStats, error) {
	if name == "" {
		return nil, errors.New("cannot describe table: empty table name")
	}
	var t TableStats
	if err := c.doJSON(ctx, http.MethodGet, "/v1/tables/"+url.PathEscape(name), nil, nil, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// Handoff asks a leaf to hand its data over through shared memory and exit
// (POST /v1/admin/handoff). It returns once the leaf has acknowledged the request.
func (c *Client) Handoff(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodPost, "/v1/admin/handoff", nil, nil)
	if err != nil {
		return err
	}
	closeBody(resp.Body)
	return nil
}

// Ready returns nil when GET /readyz answers 2xx, and an *Error (or the transport
// error) otherwise.
func (c *Client) Ready(ctx context.Context) error {
	resp, err := c.do(ctx, http.MethodGet, "/readyz", nil, nil)
	if err != nil {
		return err
	}
	closeBody(resp.Body)
	return nil
}

// doJSON does a request and decodes its 2xx JSON body into out.
func (c *Client) doJSON(ctx context.Context, method, path string, body io.Reader, h http.Header, out any) error {
	if h == nil {
		h = http.Header{}
	}
	h.Set("Accept", "application/json")
	resp, err := c.do(ctx, method, path, body, h)
	if err != nil {
		return err
	}
	defer closeBody(resp.Body)
	if err := json.NewDecoder(newLimitReader(resp.Body, MaxResultBytes)).Decode(out); err != nil {
		return fmt.Errorf("cannot decode answer of %s %s: %w", method, path, err)
	}
	return nil
}

// do sends a request and returns the response if its status is 2xx. Any other
// status is read (up to MaxErrorBytes) into an *Error and the body closed.
func (c *Client) do(ctx context.Context, method, path string, body io.Reader, h http.Header) (*http.Response, error) {
	if c.HTTP == nil {
		return nil, errors.New("cannot send request: client has no HTTP client (use NewClient)")
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return nil, fmt.Errorf("cannot make request %s %s%s: %w", method, c.BaseURL, path, err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", "reef-client")
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot %s %s%s: %w", method, c.BaseURL, path, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer closeBody(resp.Body)
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxErrorBytes))
	e := DecodeError(resp.StatusCode, data)
	if rerr != nil && len(data) == 0 {
		e.Message = fmt.Sprintf("%s (cannot read error body: %v)", e.Message, rerr)
	}
	return nil, e
}

// DecodeError turns a non-2xx answer into an *Error: the JSON body
// {"error":…,"position":…} when there is one, else the status text followed by the
// body's first line if it is short text.
func DecodeError(status int, body []byte) *Error {
	e := &Error{}
	if err := json.Unmarshal(body, e); err != nil || e.Message == "" {
		e = &Error{Message: statusText(status)}
		if line := firstLine(body); line != "" {
			e.Message += ": " + line
		}
	}
	e.Status = status
	if e.Position < 0 {
		e.Position = 0
	}
	return e
}

func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return fmt.Sprintf("HTTP %d %s", status, t)
	}
	return fmt.Sprintf("HTTP %d", status)
}

// firstLine returns the first line of body if it looks like short text, else "".
func firstLine(body []byte) string {
	const max = 200
	s := strings.TrimSpace(string(body))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if s == "" || strings.HasPrefix(s, "<") || !isPrintable(s) {
		return ""
	}
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "") + "…"
	}
	return s
}

func isPrintable(s string) bool {
	for _, r := range s {
		if r == '\uFFFD' || (r < ' ' && r != '\t') || r == 0x7f {
			return false
		}
	}
	return true
}

// closeBody discards a bounded rest of a body so that its connection can be reused,
// then closes it.
func closeBody(b io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(b, drainBytes))
	_ = b.Close()
}

// limitReader reads at most n bytes from r and fails with ErrTooLarge if r holds
// more, unlike io.LimitReader, which would end silently and yield a truncated body.
type limitReader struct {
	r   io.Reader
	n   int64 // bytes still allowed
	max int64
}

func newLimitReader(r io.Reader, n int64) *limitReader { return &limitReader{r: r, n: n, max: n} }

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		// Probe for one more byte to tell "exactly n" from "more than n".
		var b [1]byte
		n, err := l.r.Read(b[:])
		if n > 0 {
			return 0, fmt.Errorf("%w (over %d bytes)", ErrTooLarge, l.max)
		}
		return 0, err
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}
