package shm

import (
	"golang.org/x/sys/unix"
	"os"
	"testing"
)

func BenchmarkAdhocDecodeHeap(b *testing.B) {
	paths, _ := benchFiles(b, false)
	d, _ := os.ReadFile(paths[0])
	buf := alignedBytes(len(d))
	copy(buf, d)
	b.ResetTimer()
	for range b.N {
		blk, err := decode(buf)
		if err != nil {
			b.Fatal(err)
		}
		blk.Release()
	}
}

func BenchmarkAdhocMaxIndexU8(b *testing.B) {
	buf := alignedBytes(65536)
	b.SetBytes(65536)
	for range b.N {
		anyLaneAbove(buf, 8, 200)
	}
}
func BenchmarkAdhocMaxIndexU16(b *testing.B) {
	buf := alignedBytes(131072)
	b.SetBytes(131072)
	for range b.N {
		anyLaneAbove(buf, 16, 40000)
	}
}

func BenchmarkAdhocOffsets(b *testing.B) {
	n := 65536
	buf := alignedBytes((n + 1) * 4)
	b.SetBytes(int64(len(buf)))
	for range b.N {
		checkOffsets(buf, n, 0)
	}
}

func BenchmarkAdhocMmapOnly(b *testing.B) {
	paths, _ := benchFiles(b, false)
	b.ResetTimer()
	for range b.N {
		for _, p := range paths {
			d, err := mapFile(p)
			if err != nil {
				b.Fatal(err)
			}
			unix.Munmap(d)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3/float64(len(paths)), "µs/block")
}

func BenchmarkAdhocMmapTouchAll(b *testing.B) {
	paths, _ := benchFiles(b, false)
	b.ResetTimer()
	s := 0
	for range b.N {
		for _, p := range paths {
			d, err := mapFile(p)
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < len(d); i += 4096 {
				s += int(d[i])
			}
			unix.Munmap(d)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3/float64(len(paths)), "µs/block")
}

func BenchmarkAdhocMmapPopulate(b *testing.B) {
	paths, _ := benchFiles(b, false)
	b.ResetTimer()
	s := 0
	for range b.N {
		for _, p := range paths {
			f, _ := os.Open(p)
			st, _ := f.Stat()
			d, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED|unix.MAP_POPULATE)
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
			for i := 0; i < len(d); i += 4096 {
				s += int(d[i])
			}
			unix.Munmap(d)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1e3/float64(len(paths)), "µs/block")
}
