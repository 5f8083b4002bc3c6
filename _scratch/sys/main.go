package main

import (
	"fmt"
	"time"

	"github.com/reef-db/reef/shm"
)

func main() {
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		m, err := shm.ReadManifest("/dev/shm/h8bench")
		fmt.Println(len(m.Blocks), err, time.Since(t0))
	}
}
