package leaf

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/golang/snappy"

	"github.com/reef-db/reef/api"
	"github.com/reef-db/reef/leaf/wal"
)

// handleIngest serves POST /v1/ingest/{table}: an NDJSON body (one JSON object per
// line) or an Arrow IPC stream (arrow.go), optionally gzip- or snappy-compressed
// (Content-Encoding). It answers api.IngestResult once every accepted row is in the
// table.
func (s *Server) handleIngest(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("table")
	status := s.ingest(w, r, name)
	s.metrics.ingestRequests.WithLabelValues(strconv.Itoa(status)).Inc()
}

// ingest does the work of handleIngest and returns the status it answered.
func (s *Server) ingest(w http.ResponseWriter, r *http.Request, name string) int {
	if err := api.ValidTableName(name); err != nil {
		writeError(w, http.StatusBadRequest, "cannot ingest: %v", err)
		return http.StatusBadRequest
	}
	if !s.enterIngest() {
		s.metrics.ingestRefused.WithLabelValues("draining").Inc()
		writeRetry(w, http.StatusServiceUnavailable, 1, "cannot ingest into %q: leaf %s is draining for a handoff; send the batch to another leaf", name, s.cfg.ID)
		return http.StatusServiceUnavailable
	}
	defer s.exitIngest()

	if msg := checkContentType(r.Header.Get("Content-Type")); msg != "" {
		writeError(w, http.StatusUnsupportedMediaType, "cannot ingest into %q: %s", name, msg)
		return http.StatusUnsupportedMediaType
	}
	enc := r.Header.Get("Content-Encoding")
	switch enc {
	case "", "identity", "gzip", "x-gzip", "snappy", "x-snappy-framed":
	default:
		writeError(w, http.StatusUnsupportedMediaType,
			"cannot ingest into %q: unsupported Content-Encoding %q; send gzip, snappy (framed stream) or none", name, enc)
		return http.StatusUnsupportedMediaType
	}
	batchID := r.Header.Get(api.HeaderBatchID)
	if len(batchID) > MaxBatchIDBytes {
		writeError(w, http.StatusBadRequest, "cannot ingest into %q: %s header is %d bytes long, the limit is %d",
			name, api.HeaderBatchID, len(batchID), MaxBatchIDBytes)
		return http.StatusBadRequest
	}
	if r.ContentLength > s.cfg.MaxBodyBytes {
		writeError(w, http.StatusRequestEntityTooLarge, "cannot ingest into %q: body is %d bytes, the limit is %d; send smaller batches",
			name, r.ContentLength, s.cfg.MaxBodyBytes)
		return http.StatusRequestEntityTooLarge
	}

	now := time.Now()
	var claim *batch
	if batchID != "" {
		b, dup, err := s.batches.begin(r.Context(), batchID, now)
		if err != nil {
			writeRetry(w, http.StatusServiceUnavailable, 1, "cannot ingest batch %q into %q: gave up waiting for an earlier request with the same batch id: %v", batchID, name, err)
			return http.StatusServiceUnavailable
		}
		if dup {
			s.metrics.ingestDuplicates.Inc()
			res := b.res
			res.Duplicate = true
			writeJSON(w, http.StatusOK, &res)
			return http.StatusOK
		}
		claim = b
	}
	res := &api.IngestResult{Table: name, Leaf: s.cfg.ID, BatchID: batchID}
	status := s.storeBatch(w, r, name, enc, res, now)
	if claim != nil {
		s.batches.finish(batchID, claim, res, status == http.StatusOK)
	}
	return status
}

// slotWait is how long an ingest request that finds every slot taken waits for one
// before it is refused. A router sends the next batch the moment it has the answer
// to the last, which can be before that request has let go of its slot: without the
// wait such a batch would be refused, and the router would leave the leaf alone
// for a while, for nothing.
const slotWait = 50 * time.Millisecond

// takeIngestSlot takes one of the MaxConcurrentIngest slots, waiting up to slotWait
// for one; as many requests may wait as there are slots, more are refused at once.
// It reports whether it got one; the caller frees it with <-s.ingestSlots.
func (s *Server) takeIngestSlot(r *http.Request) bool {
	select {
	case s.ingestSlots <- struct{}{}:
		return true
	default:
	}
	if s.slotWaiters.Add(1) > int64(s.cfg.MaxConcurrentIngest) {
		s.slotWaiters.Add(-1)
		return false
	}
	defer s.slotWaiters.Add(-1)
	wait := slotWait
	if s.slotWait > 0 {
		wait = s.slotWait
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case s.ingestSlots <- struct{}{}:
		return true
	case <-t.C:
	case <-r.Context().Done():
	}
	return false
}

// storeBatch reads the body of one ingest request and stores its rows.
func (s *Server) storeBatch(w http.ResponseWriter, r *http.Request, name, enc string, res *api.IngestResult, now time.Time) int {
	if !s.takeIngestSlot(r) {
		s.metrics.ingestRefused.WithLabelValues("busy").Inc()
		writeRetry(w, http.StatusTooManyRequests, 1, "cannot ingest into %q: leaf %s already has %d ingest requests in progress; retry later or elsewhere",
			name, s.cfg.ID, s.cfg.MaxConcurrentIngest)
		return http.StatusTooManyRequests
	}
	defer func() { <-s.ingestSlots }()

	bufp := getBodyBuf()
	defer putBodyBuf(bufp)
	body, err := readBody(w, r, enc, s.cfg.MaxBodyBytes, *bufp)
	*bufp = body
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			writeError(w, http.StatusRequestEntityTooLarge, "cannot ingest into %q: body is over the limit of %d bytes (after decompression); send smaller batches",
				name, s.cfg.MaxBodyBytes)
			return http.StatusRequestEntityTooLarge
		}
		writeError(w, http.StatusBadRequest, "cannot ingest into %q: cannot read body: %v", name, err)
		return http.StatusBadRequest
	}
	s.metrics.ingestBytes.Add(float64(len(body)))
	if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); isArrow(mt) {
		return s.storeArrow(w, name, body, res, now)
	}

	// The rows take at most about as much memory as their JSON text.
	return s.commitBatch(w, name, res, now, body, wal.FormatNDJSON, int64(len(body)), func(d *decoder) error {
		return d.ingest(s.store, name, body)
	})
}

// commitBatch stores a decoded-on-the-fly batch: it reserves memory for it (rows
// bytes for its rows, plus the table's open block, which may double its buffers while
// they go in; twice that, for a query's build of the grown block: store.reserve),
// logs the body to the WAL, runs decode to append the rows, and answers the writer.
func (s *Server) commitBatch(w http.ResponseWriter, name string, res *api.IngestResult, now time.Time,
	body []byte, format uint8, rowBytes int64, decode func(d *decoder) error) int {
	need := rowBytes
	if t, _ := s.store.table(name, false); t != nil {
		t.mu.Lock()
		need += t.bBytes
		t.mu.Unlock()
	}
	need *= 2
	if !s.store.reserve(need) {
		s.metrics.ingestRefused.WithLabelValues("memory").Inc()
		writeRetry(w, http.StatusTooManyRequests, 5, "cannot ingest into %q: leaf %s is full (%d of %d bytes used, the batch may need %d) and nothing is past retention; send the batch to another leaf",
			name, s.cfg.ID, s.store.used(), s.cfg.MemoryLimit, need)
		return http.StatusTooManyRequests
	}
	defer s.store.unreserve(need)

	seq, logged, err := s.logBatch(res, name, format, body, now)
	if err != nil {
		s.metrics.ingestRefused.WithLabelValues("wal").Inc()
		writeRetry(w, http.StatusServiceUnavailable, 5, "cannot ingest into %q: leaf %s %v; send the batch to another leaf", name, s.cfg.ID, err)
		return http.StatusServiceUnavailable
	}
	defer logged()

	d := s.decoders.Get().(*decoder)
	defer s.decoders.Put(d)
	d.reset(res, now)
	d.walPos.seq = seq
	err = decode(d)
	s.metrics.ingestRows.WithLabelValues("accepted").Add(float64(res.Accepted))
	s.metrics.ingestRows.WithLabelValues("rejected").Add(float64(res.Rejected))
	s.metrics.ingestFieldErrors.Add(float64(d.errs))
	if err != nil {
		var tooMany *errTooManyTables
		if errors.As(err, &tooMany) {
			writeError(w, http.StatusBadRequest, "cannot ingest: %v", err)
			return http.StatusBadRequest
		}
		writeError(w, http.StatusInternalServerError, "cannot ingest into %q: %v", name, err)
		return http.StatusInternalServerError
	}
	writeJSON(w, http.StatusOK, res)
	return http.StatusOK
}

// checkContentType returns why an ingest body of media type ct is refused, or "".
// No Content-Type at all is taken as NDJSON.
func checkContentType(ct string) string {
	if ct == "" {
		return ""
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return fmt.Sprintf("cannot parse Content-Type %q: %v", ct, err)
	}
	switch mt {
	case api.ContentTypeNDJSON, "application/json", "text/plain", api.ContentTypeArrow,
		"application/x-www-form-urlencoded": // what `curl --data-binary` sends by default
		return ""
	}
	return fmt.Sprintf("unsupported Content-Type %q; send NDJSON as %s (or application/json, text/plain; curl's default form type is read as NDJSON too), or an Arrow IPC stream as %s",
		mt, api.ContentTypeNDJSON, api.ContentTypeArrow)
}

// readBody reads the whole request body into buf, decompressed, failing with an
// *http.MaxBytesError if it (compressed or not) is over limit bytes.
func readBody(w http.ResponseWriter, r *http.Request, enc string, limit int64, buf []byte) ([]byte, error) {
	var src io.Reader = http.MaxBytesReader(w, r.Body, limit)
	switch enc {
	case "gzip", "x-gzip":
		zr, err := gzip.NewReader(src)
		if err != nil {
			return buf, fmt.Errorf("cannot decompress gzip body: %w", err)
		}
		defer zr.Close()
		src = zr
	case "snappy", "x-snappy-framed":
		src = snappy.NewReader(src)
	}
	if (enc == "" || enc == "identity") && r.ContentLength > 0 && r.ContentLength <= limit {
		// The body's size is known: read it into one buffer of that size, rather
		// than growing and copying one (bytes.Buffer wants MinRead bytes free to
		// see the end).
		if need := int(r.ContentLength) + bytes.MinRead; cap(buf) < need {
			buf = make([]byte, 0, need)
		}
	}
	bb := bytes.NewBuffer(buf[:0])
	// One byte over the limit tells "exactly limit" from "more".
	n, err := bb.ReadFrom(io.LimitReader(src, limit+1))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return bb.Bytes(), err
		}
		if enc != "" && enc != "identity" {
			return bb.Bytes(), fmt.Errorf("cannot decompress %s body: %w", enc, err)
		}
		return bb.Bytes(), err
	}
	if n > limit {
		return bb.Bytes(), &http.MaxBytesError{Limit: limit}
	}
	return bb.Bytes(), nil
}

// Body buffers are reused; one grown past maxPooledBody is left to the collector
// rather than kept.
const maxPooledBody = 8 << 20

var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

func getBodyBuf() *[]byte { return bodyBufs.Get().(*[]byte) }

func putBodyBuf(b *[]byte) {
	if cap(*b) <= maxPooledBody {
		*b = (*b)[:0]
		bodyBufs.Put(b)
	}
}
