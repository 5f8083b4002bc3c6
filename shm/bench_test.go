package shm

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/reef-db/reef/block"
)

var benchBlocks = flag.Int("bench-blocks", 16, "full blocks the Open/Verify benchmarks use (about 2.6 MiB each)")

// fullBlock is a full block (65536 rows) of a typical event table: a time column,
// narrowed ints, floats, dictionary strings of both index widths and a set.
func fullBlock(tb testing.TB, id uint64) *block.Block {
	tb.Helper()
	n := block.MaxRows
	return buildBlock(tb, "requests", id, []testCol{
		{"time", block.TypeInt, gen(n, func(i int) any { return int64(1_700_000_000 + i/20) })},
		{"status", block.TypeInt, gen(n, func(i int) any { return int64([]int{200, 200, 200, 404, 500}[i%5]) })},
		{"latency_us", block.TypeInt, gen(n, func(i int) any { return int64(i*7919%1_000_000 + 50) })},
		{"bytes", block.TypeInt, gen(n, func(i int) any { return int64(i) * 1_234_567_891 })},
		{"cpu", block.TypeFloat, gen(n, func(i int) any { return float64(i%1000) / 10 })},
		{"score", block.TypeFloat, gen(n, func(i int) any {
			if i%9 == 0 {
				return nil
			}
			return float64(i) * 0.001
		})},
		{"host", block.TypeString, gen(n, func(i int) any { return fmt.Sprintf("host-%03d", i%100) })},
		{"user", block.TypeString, gen(n, func(i int) any { return fmt.Sprintf("user-%d", i*31%20000) })},
		{"tags", block.TypeSet, gen(n, func(i int) any { return []string{"a", fmt.Sprintf("t%d", i%8)} })},
	})
}

// numericBlock is a full block of numbers only: its open checks touch little
// beyond the header.
func numericBlock(tb testing.TB, id uint64) *block.Block {
	tb.Helper()
	n := block.MaxRows
	return buildBlock(tb, "metrics", id, []testCol{
		{"time", block.TypeInt, gen(n, func(i int) any { return int64(1_700_000_000 + i/20) })},
		{"value", block.TypeInt, gen(n, func(i int) any { return int64(i) * 1_234_567_891 })},
		{"count", block.TypeInt, gen(n, func(i int) any { return int64(i % 50_000) })},
		{"cpu", block.TypeFloat, gen(n, func(i int) any { return float64(i%1000) / 10 })},
		{"mem", block.TypeFloat, gen(n, func(i int) any {
			if i%9 == 0 {
				return nil
			}
			return float64(i) * 0.001
		})},
	})
}

// benchDir is a fresh directory on /dev/shm when the machine has one, as a leaf
// would use, removed after the benchmark.
func benchDir(b *testing.B) string {
	b.Helper()
	base := ""
	if st, err := os.Stat("/dev/shm"); err == nil && st.IsDir() {
		base = "/dev/shm"
	}
	dir, err := os.MkdirTemp(base, "reef-shm-bench-")
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// benchFiles writes *benchBlocks copies of a full block (distinct ids).
func benchFiles(b *testing.B, compressed bool, make func(testing.TB, uint64) *block.Block) ([]string, int64) {
	b.Helper()
	dir := benchDir(b)
	blk := make(b, 0)
	defer blk.Release()
	var paths []string
	var total int64
	for i := range *benchBlocks {
		blk.ID = uint64(i)
		var fi FileInfo
		var err error
		if compressed {
			fi, err = Writer{}.WriteCompressed(dir, blk)
		} else {
			fi, err = WriteBlock(dir, blk)
		}
		if err != nil {
			b.Fatal(err)
		}
		paths = append(paths, fi.Path)
		total += fi.Size
	}
	return paths, total
}

// BenchmarkOpenBlock opens (maps and checks) every block file and releases it.
// ms/GiB is the time per GiB of block files: it must stay far below what reading
// the data takes (compare BenchmarkVerifyBlock). "mixed" has dictionary strings and
// a set, whose offsets and indices opening scans; "numeric" has numbers only.
func BenchmarkOpenBlock(b *testing.B) {
	for _, bc := range []struct {
		name string
		make func(testing.TB, uint64) *block.Block
	}{{"mixed", fullBlock}, {"numeric", numericBlock}} {
		b.Run(bc.name, func(b *testing.B) {
			paths, total := benchFiles(b, false, bc.make)
			b.ReportAllocs()
			cpu0 := cpuTime()
			b.ResetTimer()
			for range b.N {
				for _, p := range paths {
					blk, err := OpenBlock(p)
					if err != nil {
						b.Fatal(err)
					}
					blk.Release()
				}
			}
			b.StopTimer()
			reportPerGiB(b, total, len(paths), cpu0)
		})
	}
}

// reportPerGiB reports the time per op as ms per GiB of files and µs per block,
// and the CPU time (user+system, all threads: what a busy machine does not
// inflate) per GiB.
func reportPerGiB(b *testing.B, total int64, blocks int, cpu0 time.Duration) {
	gib := float64(total) / (1 << 30)
	perOp := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	b.ReportMetric(perOp/1e6/gib, "ms/GiB")
	b.ReportMetric(perOp/1e3/float64(blocks), "µs/block")
	b.ReportMetric(float64((cpuTime()-cpu0).Nanoseconds())/float64(b.N)/1e6/gib, "cpu-ms/GiB")
}

// cpuTime is the process's user plus system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkVerifyBlock checks the file checksum of every block file.
func BenchmarkVerifyBlock(b *testing.B) {
	paths, total := benchFiles(b, false, fullBlock)
	b.SetBytes(total)
	b.ReportAllocs()
	cpu0 := cpuTime()
	b.ResetTimer()
	for range b.N {
		for _, p := range paths {
			if err := VerifyBlock(p); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.StopTimer()
	reportPerGiB(b, total, len(paths), cpu0)
}

// BenchmarkReadBlockFile reads every block file into the heap (checksum included).
func BenchmarkReadBlockFile(b *testing.B) {
	paths, total := benchFiles(b, false, fullBlock)
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, p := range paths {
			blk, err := ReadBlockFile(p)
			if err != nil {
				b.Fatal(err)
			}
			blk.Release()
		}
	}
}

// BenchmarkReadCompressed reads every disk copy into the heap; MB/s counts
// compressed bytes.
func BenchmarkReadCompressed(b *testing.B) {
	paths, total := benchFiles(b, true, fullBlock)
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		for _, p := range paths {
			blk, err := ReadCompressed(p)
			if err != nil {
				b.Fatal(err)
			}
			blk.Release()
		}
	}
}

func benchWrite(b *testing.B, write func(dir string, blk *block.Block) (FileInfo, error)) {
	blk := fullBlock(b, 1)
	defer blk.Release()
	dir := benchDir(b)
	b.SetBytes(blk.Bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		fi, err := write(dir, blk)
		if err != nil {
			b.Fatal(err)
		}
		os.Remove(filepath.Join(dir, filepath.Base(fi.Path)))
	}
}

// BenchmarkWriteBlock writes a full block to tmpfs (no fsync); MB/s counts the
// block's buffer bytes.
func BenchmarkWriteBlock(b *testing.B) { benchWrite(b, WriteBlock) }

// BenchmarkWriteCompressed writes the snappy disk copy of a full block (no fsync).
func BenchmarkWriteCompressed(b *testing.B) { benchWrite(b, Writer{}.WriteCompressed) }

// BenchmarkReadManifest reads the manifest of a 4 GiB leaf of event blocks
// (3,200 entries), as a handoff start does.
func BenchmarkReadManifest(b *testing.B) {
	dir := b.TempDir()
	m := &Manifest{LeafID: "leaf-0", Generation: 7, CreatedUnix: 1_764_000_000}
	for i := range 3200 {
		m.Blocks = append(m.Blocks, ManifestBlock{
			File: FileName(uint64(i + 1)), Size: 1_400_000 + int64(i), Rows: 65536, SchemaHash: 0x9e3779b97f4a7c15 + uint64(i),
			CRC32C: uint32(i * 2654435761), Table: "events", MinTime: 1_764_000_000 + int64(i), MaxTime: 1_764_003_600 + int64(i),
		})
	}
	if err := WriteManifest(dir, m); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := ReadManifest(dir); err != nil {
			b.Fatal(err)
		}
	}
}
