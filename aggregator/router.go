package aggregator

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/golang/snappy"
	"github.com/reef-db/reef/api"
)

// maxReportedErrors caps the per-row errors returned to a writer.
const maxReportedErrors = 100

// handleIngest routes POST /v1/ingest/{table}. The body is streamed: it is cut at
// line boundaries into batches of at most BatchBytes, each sent (and acknowledged)
// before more of the body is read, so a request never holds more than one batch.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) {
	table := r.PathValue("table")
	if err := api.ValidTableName(table); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	body, err := decodedBody(r, s.cfg.MaxBodyBytes)
	if err != nil {
		writeError(w, http.StatusUnsupportedMediaType, err)
		return
	}
	defer body.Close()

	base := r.Header.Get(api.HeaderBatchID)
	if base == "" {
		base = newBatchID()
	}
	total := api.IngestResult{Table: table, BatchID: base}
	lr := newLineChunker(body, s.cfg.BatchBytes)
	for n := 0; ; n++ {
		chunk, firstLine, err := lr.next()
		if err != nil {
			status := http.StatusBadRequest
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				status = http.StatusRequestEntityTooLarge
				err = fmt.Errorf("request body over the %d byte limit after %d accepted rows; send smaller requests (the rows before the limit were stored)", mbe.Limit, total.Accepted)
			}
			writeErrorResult(w, status, err, &total)
			return
		}
		if chunk == nil {
			break
		}
		id := base + "/" + strconv.Itoa(n)
		res, err := s.sendBatch(r.Context(), table, chunk, id)
		if err != nil {
			writeErrorResult(w, statusOf(err), fmt.Errorf("cannot store batch %s (lines %d–): %w; %d rows before it were stored", id, firstLine, err, total.Accepted), &total)
			return
		}
		s.metrics.ingestRows.Add(float64(res.Accepted))
		s.metrics.ingestBytes.Add(float64(len(chunk)))
		total.Accepted += res.Accepted
		total.Rejected += res.Rejected
		total.Duplicate = total.Duplicate || res.Duplicate
		total.ErrorsCut = total.ErrorsCut || res.ErrorsCut
		for _, e := range res.Errors {
			if len(total.Errors) >= maxReportedErrors {
				total.ErrorsCut = true
				break
			}
			e.Line += firstLine - 1
			total.Errors = append(total.Errors, e)
		}
		if total.Leaf == "" {
			total.Leaf = res.Leaf
		} else if total.Leaf != res.Leaf {
			total.Leaf = "several"
		}
	}
	writeJSON(w, http.StatusOK, &total)
}

func statusOf(err error) int {
	var ae *api.Error
	if errors.As(err, &ae) && ae.Status >= 400 && ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
		return ae.Status
	}
	return http.StatusServiceUnavailable
}

func writeErrorResult(w http.ResponseWriter, status int, err error, partial *api.IngestResult) {
	if status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	writeJSON(w, status, struct {
		Error string `json:"error"`
		*api.IngestResult
	}{err.Error(), partial})
}

// decodedBody returns the request body, bounded and decompressed.
func decodedBody(r *http.Request, limit int64) (io.ReadCloser, error) {
	var body io.Reader = http.MaxBytesReader(nil, r.Body, limit)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, fmt.Errorf("cannot read gzip body: %w", err)
		}
		// The decompressed size is bounded too.
		return readCloser{io.LimitReader(zr, 4*limit), r.Body}, nil
	case "snappy":
		return readCloser{io.LimitReader(snappy.NewReader(body), 4*limit), r.Body}, nil
	default:
		return nil, fmt.Errorf("unsupported Content-Encoding %q (use gzip, snappy or none)", enc)
	}
	switch ct := r.Header.Get("Content-Type"); {
	case ct == "", ct == "application/x-ndjson", ct == "application/json", ct == "text/plain",
		bytes.HasPrefix([]byte(ct), []byte("application/x-ndjson;")), bytes.HasPrefix([]byte(ct), []byte("text/plain;")),
		bytes.HasPrefix([]byte(ct), []byte("application/json;")):
	default:
		return nil, fmt.Errorf("unsupported Content-Type %q (send NDJSON: application/x-ndjson)", ct)
	}
	return readCloser{body, r.Body}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

func newBatchID() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// lineChunker cuts a stream into chunks of whole lines of at most max bytes (a
// single longer line becomes a chunk of its own, and the leaf rejects it with its
// line number).
type lineChunker struct {
	r    *bufio.Reader
	max  int
	buf  []byte
	line int // lines consumed so far
	eof  bool
}

func newLineChunker(r io.Reader, max int) *lineChunker {
	return &lineChunker{r: bufio.NewReaderSize(r, 64<<10), max: max}
}

// next returns the next chunk and the 1-based number of its first line, or nil at
// the end. The chunk is valid until the next call.
func (c *lineChunker) next() ([]byte, int, error) {
	if c.eof {
		return nil, 0, nil
	}
	c.buf = c.buf[:0]
	first := c.line + 1
	for len(c.buf) < c.max {
		line, err := c.r.ReadSlice('\n')
		for errors.Is(err, bufio.ErrBufferFull) {
			c.buf = append(c.buf, line...)
			if len(c.buf) > 4*c.max {
				return nil, 0, fmt.Errorf("line %d is longer than %d bytes", c.line+1, 4*c.max)
			}
			line, err = c.r.ReadSlice('\n')
		}
		c.buf = append(c.buf, line...)
		if len(line) > 0 {
			c.line++
		}
		if err == io.EOF {
			c.eof = true
			break
		}
		if err != nil {
			return nil, 0, err
		}
	}
	if len(bytes.TrimSpace(c.buf)) == 0 {
		if c.eof {
			return nil, 0, nil
		}
	}
	return c.buf, first, nil
}

// sendBatch stores one batch on exactly one leaf. It returns only after a leaf
// acknowledged the batch, or with an error once no leaf would take it before the
// request's deadline.
//
// Failures are of three kinds. A refusal (429, 503, other 5xx) or a connection that
// was never made (refused, reset before sending) means the leaf does not have the
// batch: it is excluded for a while and another leaf is tried. A failure after the
// request was sent (timeout, reset while waiting) is ambiguous: the leaf may hold the
// batch, so it is retried on the same leaf with the same batch id (which the leaf
// deduplicates) and never sent elsewhere. A 4xx other than 429 is the writer's error
// and is returned as is.
func (s *Server) sendBatch(ctx context.Context, table string, body []byte, id string) (*api.IngestResult, error) {
	if c := s.recent.get(id); c != nil {
		// A retry of a batch already acknowledged: the same leaf deduplicates it.
		return s.sendSticky(ctx, c, table, body, id)
	}
	tried := make(map[*child]bool)
	backoff := 20 * time.Millisecond
	var lastErr error
	for {
		c := s.pick(tried)
		if c == nil {
			if err := ctx.Err(); err != nil {
				return nil, fmt.Errorf("no leaf took the batch before the deadline: %w (last error: %v)", err, lastErr)
			}
			if s.closing() {
				return nil, errors.New("aggregator is shutting down")
			}
			// Every leaf refused or is down: wait, then try them all again.
			s.metrics.ingestStalls.Inc()
			clear(tried)
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				continue
			}
			backoff = min(backoff*2, time.Second)
			if lastErr == nil {
				lastErr = errors.New("no healthy leaf")
			}
			continue
		}
		tried[c] = true
		res, err := c.client.Ingest(ctx, table, bytes.NewReader(body), "application/x-ndjson", id)
		if err == nil {
			s.recent.put(id, c)
			c.noteIngest(table, res.Accepted)
			return res, nil
		}
		lastErr = fmt.Errorf("%s: %w", c.url, err)
		var ae *api.Error
		switch {
		case errors.As(err, &ae) && (ae.Status == http.StatusTooManyRequests || ae.Status >= 500):
			s.metrics.ingestRefusals.Inc()
			c.exclude(s.cfg.ExcludeFor)
		case errors.As(err, &ae):
			return nil, err // the writer's mistake (bad table name, body too large, …)
		case notSent(err):
			c.markDown(err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("batch not acknowledged before the deadline: %w", lastErr)
		default:
			return s.sendSticky(ctx, c, table, body, id)
		}
	}
}

// sendSticky retries a batch on the one leaf that may already hold it.
func (s *Server) sendSticky(ctx context.Context, c *child, table string, body []byte, id string) (*api.IngestResult, error) {
	s.recent.put(id, c)
	backoff := 50 * time.Millisecond
	for {
		res, err := c.client.Ingest(ctx, table, bytes.NewReader(body), "application/x-ndjson", id)
		if err == nil {
			if !res.Duplicate {
				c.noteIngest(table, res.Accepted)
			}
			return res, nil
		}
		var ae *api.Error
		if errors.As(err, &ae) && ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
			return nil, err
		}
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return nil, fmt.Errorf("leaf %s may hold batch %s but did not confirm it before the deadline (retry with the same %s): %w", c.url, id, api.HeaderBatchID, err)
		}
		backoff = min(backoff*2, time.Second)
	}
}

// notSent reports whether a client error proves the request never reached the leaf.
func notSent(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) ||
		errors.Is(err, syscall.ENETUNREACH)
}

// pick chooses a routing target by two random choices among routable children not
// yet tried: the one with more free memory wins.
func (s *Server) pick(tried map[*child]bool) *child {
	now := time.Now()
	var cands []*child
	for _, c := range s.members.list() {
		if !tried[c] && c.routable(now) {
			cands = append(cands, c)
		}
	}
	switch len(cands) {
	case 0:
		return nil
	case 1:
		return cands[0]
	}
	i := rand.IntN(len(cands))
	j := rand.IntN(len(cands) - 1)
	if j >= i {
		j++
	}
	a, b := cands[i], cands[j]
	if b.freeBytes() > a.freeBytes() {
		return b
	}
	return a
}

// recentBatches remembers which leaf acknowledged (or may hold) each recent batch
// id, so a retried batch goes back to the same leaf and is deduplicated there. It
// holds at most max ids, forgetting the oldest first.
type recentBatches struct {
	mu   sync.Mutex
	max  int
	m    map[string]*child
	ring []string
	next int
}

func newRecentBatches(max int) *recentBatches {
	return &recentBatches{max: max, m: make(map[string]*child, max), ring: make([]string, max)}
}

func (r *recentBatches) get(id string) *child {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.m[id]
}

func (r *recentBatches) put(id string, c *child) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.m[id]; ok {
		r.m[id] = c
		return
	}
	if old := r.ring[r.next]; old != "" {
		delete(r.m, old)
	}
	r.ring[r.next] = id
	r.m[id] = c
	r.next = (r.next + 1) % r.max
}
