package aggregator

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

type metrics struct {
	queries          prometheus.Counter
	partialAnswers   prometheus.Counter
	coverageRefusals prometheus.Counter
	coverage         prometheus.Histogram
	childLatency     *prometheus.HistogramVec
	childrenUp       prometheus.Gauge
	ingestRows       prometheus.Counter
	ingestBytes      prometheus.Counter
	ingestRefusals   prometheus.Counter
	ingestStalls     prometheus.Counter
}

func newMetrics(reg *prometheus.Registry) *metrics {
	m := &metrics{
		queries: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reef_aggregator_queries_total", Help: "Queries answered."}),
		partialAnswers: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reef_aggregator_partial_answers_total", Help: "Queries answered without every leaf."}),
		coverageRefusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reef_aggregator_min_coverage_failures_total", Help: "Queries refused for coverage below min_coverage."}),
		coverage: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "reef_aggregator_query_coverage_percent", Help: "Coverage of answered queries.",
			Buckets: []float64{50, 75, 90, 95, 99, 100}}),
		childLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "reef_aggregator_child_query_seconds", Help: "Partial query latency per child.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"child"}),
		childrenUp: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "reef_aggregator_children_up", Help: "Children that answered the last health check."}),
		ingestRows: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reef_aggregator_ingest_rows_total", Help: "Rows acknowledged by leaves."}),
		ingestBytes: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reef_aggregator_ingest_bytes_total", Help: "Bytes of batches acknowledged by leaves."}),
		ingestRefusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reef_aggregator_ingest_refusals_total", Help: "Batches a leaf refused (429/5xx)."}),
		ingestStalls: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reef_aggregator_ingest_stalls_total", Help: "Times no leaf would take a batch and the router waited."}),
	}
	reg.MustRegister(m.queries, m.partialAnswers, m.coverageRefusals, m.coverage, m.childLatency,
		m.childrenUp, m.ingestRows, m.ingestBytes, m.ingestRefusals, m.ingestStalls,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}
