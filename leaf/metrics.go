package leaf

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the leaf's Prometheus metrics, in a registry of its own so that
// several leaves can live in one process (tests, reef local).
type metrics struct {
	reg *prometheus.Registry

	ingestRequests    *prometheus.CounterVec // by HTTP status code
	ingestRows        *prometheus.CounterVec // by result: accepted, rejected
	ingestBytes       prometheus.Counter
	ingestFieldErrors prometheus.Counter
	ingestRefused     *prometheus.CounterVec // by reason: memory, busy, draining
	ingestDuplicates  prometheus.Counter

	queries       *prometheus.CounterVec // by result: ok, error, timeout, busy
	queryDuration prometheus.Histogram

	blocksSealed  prometheus.Counter
	blocksDropped prometheus.Counter
}

// gauges are read when scraped.
type gauges struct {
	memoryUsed  func() float64
	memoryLimit float64
	blocks      func() float64
	rows        func() float64
	tables      func() float64
}

func newMetrics() *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(c prometheus.Collector) { m.reg.MustRegister(c) }
	m.ingestRequests = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reef_leaf_ingest_requests_total", Help: "Ingest requests by HTTP status code.",
	}, []string{"code"})
	m.ingestRows = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reef_leaf_ingest_rows_total", Help: "Rows received, by result (accepted, rejected).",
	}, []string{"result"})
	m.ingestBytes = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reef_leaf_ingest_bytes_total", Help: "Bytes of ingest bodies after decompression.",
	})
	m.ingestFieldErrors = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reef_leaf_ingest_errors_total", Help: "Rejected rows and fields.",
	})
	m.ingestRefused = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reef_leaf_ingest_refused_total", Help: "Ingest requests refused, by reason (memory, busy, draining).",
	}, []string{"reason"})
	m.ingestDuplicates = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reef_leaf_ingest_duplicates_total", Help: "Batches answered as duplicates of an earlier batch id.",
	})
	m.queries = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "reef_leaf_queries_total", Help: "Partial queries by result (ok, error, timeout, busy).",
	}, []string{"result"})
	m.queryDuration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "reef_leaf_query_duration_seconds",
		Help:    "Time to answer a partial query.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16), // 0.5ms … 16s
	})
	m.blocksSealed = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reef_leaf_blocks_sealed_total", Help: "Open blocks sealed.",
	})
	m.blocksDropped = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "reef_leaf_blocks_dropped_total", Help: "Sealed blocks dropped by retention.",
	})
	for _, c := range []prometheus.Collector{m.ingestRequests, m.ingestRows, m.ingestBytes,
		m.ingestFieldErrors, m.ingestRefused, m.ingestDuplicates, m.queries, m.queryDuration,
		m.blocksSealed, m.blocksDropped} {
		f(c)
	}
	f(collectors.NewGoCollector())
	f(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// registerGauges adds the gauges read from the server's state at scrape time.
func (m *metrics) registerGauges(g gauges) {
	gf := func(name, help string, fn func() float64) {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
	}
	gf("reef_leaf_memory_used_bytes", "Bytes held by blocks and open builders.", g.memoryUsed)
	gf("reef_leaf_memory_limit_bytes", "The leaf's memory limit.", func() float64 { return g.memoryLimit })
	gf("reef_leaf_blocks", "Blocks held, sealed and open.", g.blocks)
	gf("reef_leaf_rows", "Rows held.", g.rows)
	gf("reef_leaf_tables", "Tables held.", g.tables)
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
