package main

import (
	"bufio"
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/reef-db/reef/block"
	"github.com/reef-db/reef/shm"
)

// runDump is `reef dump`: a block file (shm <id>.blk or disk copy <id>.blk.sz) as a
// standard Arrow IPC file, for other tools.
func runDump(args []string) int {
	fs := flag.NewFlagSet("reef dump", flag.ExitOnError)
	out := fs.String("out", "", "write the Arrow IPC file here (default: standard output, if it is not a terminal)")
	fs.Usage = func() {
		fmt.Fprintf(os.Stderr, "usage: reef dump [--out FILE.arrow] BLOCKFILE\n\n"+
			"Exports a reef block file (<id>.blk from a leaf's shm directory, or its disk copy\n"+
			"<id>.blk.sz) as an Arrow IPC file. The file's checksum is checked first.\n\n")
		fs.PrintDefaults()
	}
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		fs.Usage()
		return 2
	}
	path := fs.Arg(0)
	var b *block.Block
	var err error
	if strings.HasSuffix(path, ".sz") {
		b, err = shm.ReadCompressed(path)
	} else {
		b, err = shm.ReadBlockFile(path)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "reef dump:", err)
		return 1
	}
	defer b.Release()

	w := os.Stdout
	if *out != "" {
		f, err := os.Create(*out)
		if err != nil {
			fmt.Fprintln(os.Stderr, "reef dump:", err)
			return 1
		}
		defer f.Close()
		w = f
	} else if isTerminal(os.Stdout) {
		fmt.Fprintln(os.Stderr, "reef dump: standard output is a terminal; pass --out FILE or redirect it")
		return 2
	}
	bw := bufio.NewWriterSize(w, 1<<20)
	if err := shm.ExportArrowIPC(b, bw); err != nil {
		fmt.Fprintln(os.Stderr, "reef dump:", err)
		return 1
	}
	if err := bw.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "reef dump:", err)
		return 1
	}
	if *out != "" {
		if err := w.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "reef dump:", err)
			return 1
		}
		fmt.Fprintf(os.Stderr, "wrote block %d of table %q (%d rows, %d columns) to %s\n", b.ID, b.Table, b.Rows, len(b.Columns), *out)
	}
	return 0
}
