package leaf

import (
	"github.com/prometheus/client_golang/prometheus"
)

// persistMetrics are the metrics of the leaf's durable storage: the WAL, the shm
// block files and their disk copies. They live in the leaf's registry.
type persistMetrics struct {
	walAppends     prometheus.Counter
	walErrors      prometheus.Counter
	walTrimmed     prometheus.Counter
	shmWriteErrors prometheus.Counter
	diskCopies     prometheus.Counter
	diskCopyErrors prometheus.Counter
	verifyFailures prometheus.Counter
	reloads        *prometheus.CounterVec // by source: disk, wal, lost
}

// persistGauges are read when scraped.
type persistGauges struct {
	walBytes      func() float64
	walSegments   func() float64
	diskBacklog   func() float64
	pendingChecks func() float64
}

func newPersistMetrics(reg *prometheus.Registry) *persistMetrics {
	m := &persistMetrics{
		walAppends: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reef_leaf_wal_appends_total", Help: "Ingest batches appended to the WAL.",
		}),
		walErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reef_leaf_wal_errors_total", Help: "WAL appends or syncs that failed (the leaf then refuses ingest).",
		}),
		walTrimmed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reef_leaf_wal_segments_trimmed_total", Help: "WAL segments deleted because every row in them is in a durable block.",
		}),
		shmWriteErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reef_leaf_shm_write_errors_total", Help: "Sealed blocks that could not be written to the shm directory.",
		}),
		diskCopies: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reef_leaf_disk_copies_total", Help: "Compressed disk copies of sealed blocks written.",
		}),
		diskCopyErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reef_leaf_disk_copy_errors_total", Help: "Disk copies that failed and were retried.",
		}),
		verifyFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "reef_leaf_block_verify_failures_total", Help: "Block files that failed a check (checksum, bounds) and were dropped from service.",
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "reef_leaf_block_reloads_total", Help: "Damaged blocks reloaded, by source (disk, wal, lost).",
		}, []string{"source"}),
	}
	for _, c := range []prometheus.Collector{m.walAppends, m.walErrors, m.walTrimmed, m.shmWriteErrors,
		m.diskCopies, m.diskCopyErrors, m.verifyFailures, m.reloads} {
		reg.MustRegister(c)
	}
	return m
}

func (m *persistMetrics) registerGauges(reg *prometheus.Registry, g persistGauges) {
	gf := func(name, help string, fn func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, fn))
	}
	gf("reef_leaf_wal_bytes", "Bytes in WAL segment files.", g.walBytes)
	gf("reef_leaf_wal_segments", "WAL segment files.", g.walSegments)
	gf("reef_leaf_disk_copy_backlog", "Sealed blocks waiting for their disk copy.", g.diskBacklog)
	gf("reef_leaf_blocks_unverified", "Blocks attached at start whose full check has not run yet.", g.pendingChecks)
}
