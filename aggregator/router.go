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
	"mime"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/golang/snappy"
	"github.com/reef-db/reef/api"
)

// maxReportedErrors caps the per-row errors returned to a writer.
const maxReportedErrors = 100

// handleIngest routes POST /v1/ingest/{table}. An NDJSON body is streamed: it is
// cut at line boundaries into batches of at most BatchBytes, each sent (and
// acknowledged) before more of the body is read, so a request never holds more than
// one batch. An Arrow IPC stream cannot be cut without decoding it, so it is read
// whole (at most MaxArrowBytes) and sent to one leaf as one batch.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) {
	table := r.PathValue("table")
	if err := api.ValidTableName(table); err != nil {
		writeError(w, http.StatusBadRequest, err)
		return
	}
	arrow, err := ingestFormat(r.Header.Get("Content-Type"))
	if err != nil {
		writeError(w, http.StatusUnsupportedMediaType, err)
		return
	}
	limit := s.cfg.MaxBodyBytes
	if arrow {
		limit = min(limit, s.cfg.MaxArrowBytes)
	}
	body, status, err := decodedBody(r, limit)
	if err != nil {
		writeError(w, status, err)
		return
	}
	defer body.Close()

	base := r.Header.Get(api.HeaderBatchID)
	if base == "" {
		base = newBatchID()
	}
	total := api.IngestResult{Table: table, BatchID: base}
	if arrow {
		s.ingestArrow(w, r.Context(), table, body, base, &total)
		return
	}
	lr := newLineChunker(body, s.cfg.BatchBytes)
	defer lr.release()
	for n := 0; ; n++ {
		chunk, firstLine, err := lr.next()
		total.Rejected += len(lr.long)
		for _, e := range lr.long {
			addError(&total, e)
		}
		lr.long = lr.long[:0]
		if err != nil {
			status := http.StatusBadRequest
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				status = http.StatusRequestEntityTooLarge
				err = fmt.Errorf("request body over the %d byte limit (compressed or decompressed) after %d accepted rows; send smaller requests (the rows before the limit were stored)", mbe.Limit, total.Accepted)
			} else {
				err = fmt.Errorf("cannot read body after %d accepted rows (they were stored): %w", total.Accepted, err)
			}
			writeErrorResult(w, status, err, &total)
			return
		}
		if chunk == nil {
			break
		}
		id := base + "/" + strconv.Itoa(n)
		res, err := s.sendBatch(r.Context(), table, chunk, id, api.ContentTypeNDJSON)
		if err != nil {
			writeErrorResult(w, statusOf(err), fmt.Errorf("cannot store batch %s (lines %d–): %w; %d rows before it were stored", id, firstLine, err, total.Accepted), &total)
			return
		}
		addResult(&total, res, firstLine)
		s.metrics.ingestRows.Add(float64(res.Accepted))
		s.metrics.ingestBytes.Add(float64(len(chunk)))
	}
	slices.SortStableFunc(total.Errors, func(a, b api.RowError) int { return a.Line - b.Line })
	writeJSON(w, http.StatusOK, &total)
}

// ingestArrow reads a whole Arrow IPC stream and stores it on one leaf, which
// decodes it and reports rows by their 1-based number in the stream.
func (s *Server) ingestArrow(w http.ResponseWriter, ctx context.Context, table string, body io.Reader, base string, total *api.IngestResult) {
	data, err := io.ReadAll(body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf(
				"the Arrow stream is over the %d byte limit (compressed or decompressed); an Arrow body goes whole to one leaf, so send smaller streams", mbe.Limit))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Errorf("cannot read Arrow body: %w", err))
		return
	}
	id := base + "/0"
	res, err := s.sendBatch(ctx, table, data, id, api.ContentTypeArrow)
	if err != nil {
		writeErrorResult(w, statusOf(err), fmt.Errorf("cannot store Arrow batch %s: %w", id, err), total)
		return
	}
	addResult(total, res, 1)
	s.metrics.ingestRows.Add(float64(res.Accepted))
	s.metrics.ingestBytes.Add(float64(len(data)))
	writeJSON(w, http.StatusOK, total)
}

// addResult adds one leaf's answer for a batch starting at line firstLine to total.
func addResult(total *api.IngestResult, res *api.IngestResult, firstLine int) {
	total.Accepted += res.Accepted
	total.Rejected += res.Rejected
	total.Duplicate = total.Duplicate || res.Duplicate
	total.ErrorsCut = total.ErrorsCut || res.ErrorsCut
	for _, e := range res.Errors {
		e.Line += firstLine - 1
		addError(total, e)
	}
	if total.Leaf == "" {
		total.Leaf = res.Leaf
	} else if total.Leaf != res.Leaf {
		total.Leaf = "several"
	}
}

// addError lists e in total, up to maxReportedErrors.
func addError(total *api.IngestResult, e api.RowError) {
	if len(total.Errors) >= maxReportedErrors {
		total.ErrorsCut = true
		return
	}
	total.Errors = append(total.Errors, e)
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

// ingestFormat checks an ingest body's Content-Type and reports whether it is an
// Arrow IPC stream (else it is NDJSON). No Content-Type at all means NDJSON.
func ingestFormat(ct string) (arrow bool, err error) {
	if ct == "" {
		return false, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return false, fmt.Errorf("cannot parse Content-Type %q: %v", ct, err)
	}
	switch mt {
	case api.ContentTypeNDJSON, "application/json", "text/plain",
		"application/x-www-form-urlencoded": // what `curl --data-binary` sends by default
		return false, nil
	case api.ContentTypeArrow:
		return true, nil
	}
	return false, fmt.Errorf("unsupported Content-Type %q; send NDJSON as %s (or application/json, text/plain; curl's default form type is read as NDJSON too), or an Arrow IPC stream as %s",
		mt, api.ContentTypeNDJSON, api.ContentTypeArrow)
}

// decodedBody returns the request body, decompressed, failing reads with an
// *http.MaxBytesError once it is over limit bytes, compressed or decompressed. A
// refusal comes with its status: 415 for an unsupported encoding, 400 for a body
// that does not start like its encoding.
func decodedBody(r *http.Request, limit int64) (io.ReadCloser, int, error) {
	body := http.MaxBytesReader(nil, r.Body, limit)
	switch enc := r.Header.Get("Content-Encoding"); enc {
	case "", "identity":
		return body, 0, nil
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(body)
		if err != nil {
			return nil, http.StatusBadRequest, fmt.Errorf("cannot read gzip body: %w", err)
		}
		return readCloser{&limitedReader{r: zr, n: limit, limit: limit}, body}, 0, nil
	case "snappy", "x-snappy-framed":
		return readCloser{&limitedReader{r: snappy.NewReader(body), n: limit, limit: limit}, body}, 0, nil
	default:
		return nil, http.StatusUnsupportedMediaType, fmt.Errorf("unsupported Content-Encoding %q; send gzip, snappy (framed stream) or none", enc)
	}
}

type readCloser struct {
	io.Reader
	io.Closer
}

// limitedReader reads at most limit bytes from r and then fails with an
// *http.MaxBytesError if r has more, rather than ending silently like
// io.LimitReader: a decompressed body cut short would lose rows without a word.
type limitedReader struct {
	r        io.Reader
	n, limit int64
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		var one [1]byte
		n, err := l.r.Read(one[:])
		if n > 0 {
			return 0, &http.MaxBytesError{Limit: l.limit}
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

func newBatchID() string {
	var b [8]byte
	_, _ = crand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// lineChunker cuts a stream into chunks of whole lines of at most max bytes. A
// single longer line becomes a chunk of its own (the leaf rejects it with its line
// number if it is over the leaf's limit); a line longer than 4×max is not sent at
// all: it is replaced by an empty line (so later lines keep their numbers) and
// reported in long.
type lineChunker struct {
	r       *bufio.Reader
	max     int
	maxLine int
	buf     []byte
	line    int // lines consumed so far
	eof     bool
	long    []api.RowError // lines dropped for their length since the caller last looked
}

func newLineChunker(r io.Reader, max int) *lineChunker {
	c := &lineChunker{max: max, maxLine: 4 * max}
	if b, ok := chunkBufs.Get().(*chunkBuf); ok {
		b.rd.Reset(r)
		c.r, c.buf = b.rd, b.data[:0]
	} else {
		c.r = bufio.NewReaderSize(r, 64<<10)
	}
	return c
}

// chunkBuf is a reader and a chunk buffer, reused across requests so that routing a
// batch does not grow a fresh buffer line by line every time.
type chunkBuf struct {
	rd   *bufio.Reader
	data []byte
}

// chunkBufs holds idle chunk buffers; one grown past maxPooledChunk (a request with
// a huge line) is left to the collector.
var chunkBufs sync.Pool

const maxPooledChunk = 16 << 20

// release returns the chunker's buffers for reuse; the chunker must not be used
// afterwards.
func (c *lineChunker) release() {
	if cap(c.buf) > maxPooledChunk {
		return
	}
	c.r.Reset(nil)
	chunkBufs.Put(&chunkBuf{rd: c.r, data: c.buf[:0]})
}

// next returns the next chunk and the 1-based number of its first line, or nil at
// the end. The chunk is valid until the next call.
func (c *lineChunker) next() ([]byte, int, error) {
	if c.eof {
		return nil, 0, nil
	}
	c.buf = c.buf[:0]
	first := c.line + 1
	for len(c.buf) < c.max && !c.eof {
		ok, err := c.bulk()
		if err != nil {
			return nil, 0, err
		}
		if ok {
			continue
		}
		if err := c.readLine(); err != nil {
			return nil, 0, err
		}
	}
	if !c.eof && len(c.buf) > 0 && c.buf[len(c.buf)-1] != '\n' {
		// A direct read ended inside a line: finish it.
		if err := c.readLine(); err != nil {
			return nil, 0, err
		}
	}
	if c.eof && len(bytes.TrimSpace(c.buf)) == 0 {
		return nil, 0, nil
	}
	return c.buf, first, nil
}

// bulk appends, in one copy, the whole lines already read ahead that fit in the
// chunk, and reports whether there were any. (None of them can be over maxLine: they
// fit in max.) When nothing is read ahead and the chunk has room for more than the
// reader's buffer, it reads the body straight into the chunk instead, which may end
// inside a line: readLine finishes it.
func (c *lineChunker) bulk() (bool, error) {
	if c.r.Buffered() == 0 {
		return c.direct()
	}
	n := min(c.r.Buffered(), c.max-len(c.buf))
	if n <= 0 {
		return false, nil
	}
	win, _ := c.r.Peek(n)
	k := bytes.LastIndexByte(win, '\n')
	if k < 0 {
		return false, nil
	}
	c.buf = append(c.buf, win[:k+1]...)
	c.line += bytes.Count(win[:k+1], []byte{'\n'})
	_, _ = c.r.Discard(k + 1)
	return true, nil
}

// direct reads the body into the chunk, up to max bytes, without a copy through the
// reader's buffer (bufio reads a large request straight into it), and reports
// whether it read anything.
func (c *lineChunker) direct() (bool, error) {
	room := c.max - len(c.buf)
	if room < c.r.Size() {
		return false, nil
	}
	c.buf = slices.Grow(c.buf, room)
	n, err := c.r.Read(c.buf[len(c.buf):c.max])
	c.line += bytes.Count(c.buf[len(c.buf):len(c.buf)+n], []byte{'\n'})
	c.buf = c.buf[:len(c.buf)+n]
	switch {
	case err == io.EOF:
		c.eof = true
		return true, nil
	case err != nil:
		return false, err
	}
	return n > 0, nil
}

// readLine appends the rest of the current line, with its newline if it has one,
// to c.buf: the whole line, or the part a direct read left out.
func (c *lineChunker) readLine() error {
	start := bytes.LastIndexByte(c.buf, '\n') + 1 // where the line starts in c.buf
	n, long := len(c.buf)-start, false
	for {
		part, err := c.r.ReadSlice('\n')
		n += len(part)
		if !long && n > c.maxLine {
			long = true
			c.buf = c.buf[:start]
		}
		if !long {
			c.buf = append(c.buf, part...)
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil && err != io.EOF {
			return err
		}
		if n > 0 {
			c.line++
		}
		if long {
			c.buf = append(c.buf, '\n')
			c.long = append(c.long, api.RowError{Line: c.line,
				Reason: fmt.Sprintf("line is %d bytes long, over the router's limit of %d; it was not stored", n, c.maxLine)})
		}
		c.eof = err == io.EOF
		return nil
	}
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
func (s *Server) sendBatch(ctx context.Context, table string, body []byte, id, contentType string) (*api.IngestResult, error) {
	if c := s.recent.get(id); c != nil {
		// A retry of a batch already acknowledged: the same leaf deduplicates it.
		return s.sendSticky(ctx, c, table, body, id, contentType)
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
			backoff = min(backoff*2, 250*time.Millisecond)
			if lastErr == nil {
				lastErr = errors.New("no healthy leaf")
			}
			continue
		}
		tried[c] = true
		res, err := c.ingest(ctx, table, body, contentType, id)
		if err == nil {
			s.recent.put(id, c)
			c.noteIngest(table, res.Accepted, len(body))
			return res, nil
		}
		lastErr = fmt.Errorf("%s: %w", c.url, err)
		var ae *api.Error
		switch {
		case errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests:
			// Busy or full: cheap for the leaf to say again, so look back soon.
			s.metrics.ingestRefusals.Inc()
			c.exclude(s.cfg.ExcludeBusyFor)
		case errors.As(err, &ae) && ae.Status >= 500:
			s.metrics.ingestRefusals.Inc()
			c.exclude(s.cfg.ExcludeFor)
		case errors.As(err, &ae):
			return nil, err // the writer's mistake (bad table name, body too large, …)
		case notSent(err):
			c.markDown(err)
		case ctx.Err() != nil:
			return nil, fmt.Errorf("batch not acknowledged before the deadline: %w", lastErr)
		default:
			return s.sendSticky(ctx, c, table, body, id, contentType)
		}
	}
}

// sendSticky retries a batch on the one leaf that may already hold it.
func (s *Server) sendSticky(ctx context.Context, c *child, table string, body []byte, id, contentType string) (*api.IngestResult, error) {
	s.recent.put(id, c)
	backoff := 50 * time.Millisecond
	for {
		res, err := c.ingest(ctx, table, body, contentType, id)
		if err == nil {
			if !res.Duplicate {
				c.noteIngest(table, res.Accepted, len(body))
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

// ingest sends one batch to the child, counting it in flight meanwhile.
func (c *child) ingest(ctx context.Context, table string, body []byte, contentType, id string) (*api.IngestResult, error) {
	c.inflight.Add(int64(len(body)))
	defer c.inflight.Add(-int64(len(body)))
	return c.client.Ingest(ctx, table, bytes.NewReader(body), contentType, id)
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
	if b.room() > a.room() {
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
