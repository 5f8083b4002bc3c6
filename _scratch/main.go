package main

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"time"
	"runtime/pprof"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/shm"
	"github.com/reef-db/reef/testbench"
)

func main() {
	dir := "/dev/shm/reef-scratch"
	os.RemoveAll(dir)
	os.MkdirAll(dir, 0o700)
	g := testbench.NewGenerator(testbench.GenConfig{Seed: 1, Rows: 64 * 65536})
	var e testbench.Event
	var total int64
	var mbs []shm.ManifestBlock
	for id := uint64(1); id <= 64; id++ {
		b := block.NewBuilder("events")
		ti, _ := b.AddColumn("time", block.TypeInt)
		si, _ := b.AddColumn("service", block.TypeString)
		hi, _ := b.AddColumn("host", block.TypeString)
		ei, _ := b.AddColumn("endpoint", block.TypeString)
		sti, _ := b.AddColumn("status", block.TypeInt)
		li, _ := b.AddColumn("latency_ms", block.TypeFloat)
		bi, _ := b.AddColumn("bytes", block.TypeInt)
		for b.Len() < 65536 && g.Next(&e) {
			b.BeginRow()
			b.SetInt(ti, e.Time)
			b.SetString(si, []byte(e.Service))
			b.SetString(hi, []byte(e.Host))
			b.SetString(ei, []byte(e.Endpoint))
			b.SetInt(sti, e.Status)
			b.SetFloat(li, e.LatencyMS)
			b.SetInt(bi, e.Bytes)
			b.EndRow()
		}
		blk, err := b.Build(id)
		if err != nil {
			panic(err)
		}
		fi, err := shm.WriteBlock(dir, blk)
		if err != nil {
			panic(err)
		}
		total += fi.Size
		mbs = append(mbs, fi.ManifestBlock())
		blk.Release()
	}
	fmt.Printf("64 blocks, %d bytes, %.1f bytes/row\n", total, float64(total)/float64(64*65536))
	pf, _ := os.Create("/tmp/attach.prof"); pprof.StartCPUProfile(pf)
	for round := 0; round < 60; round++ {
		t0 := time.Now()
		var bs []*block.Block
		for _, mb := range mbs {
			b, _, err := shm.AttachBlockDeferred(dir, mb)
			if err != nil {
				panic(err)
			}
			bs = append(bs, b)
		}
		d := time.Since(t0)
		fmt.Printf("attach seq: %v -> %.0f ms/GiB\n", d, float64(d.Milliseconds())/float64(total)*float64(1<<30))
		for _, b := range bs {
			b.Release()
		}
		t0 = time.Now()
		var wg sync.WaitGroup
		var mu sync.Mutex
		bs = bs[:0]
		ch := make(chan shm.ManifestBlock)
		for w := 0; w < 2; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for mb := range ch {
					b, _, err := shm.AttachBlockDeferred(dir, mb)
					if err != nil {
						panic(err)
					}
					mu.Lock()
					bs = append(bs, b)
					mu.Unlock()
				}
			}()
		}
		for _, mb := range mbs {
			ch <- mb
		}
		close(ch)
		wg.Wait()
		d = time.Since(t0)
		fmt.Printf("attach par2: %v -> %.0f ms/GiB\n", d, float64(d.Milliseconds())/float64(total)*float64(1<<30))
		for _, b := range bs {
			b.Release()
		}
	}
	pprof.StopCPUProfile()
	_ = filepath.Join
	os.RemoveAll(dir)
}
