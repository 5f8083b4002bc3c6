package shm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"github.com/reef-db/reef/block"
)

func TestCopyCompressed(t *testing.T) {
	shmDir, diskA, diskB := t.TempDir(), t.TempDir(), t.TempDir()
	b := mixedBlock(t, 21, 500)
	defer b.Release()
	fi, err := WriteBlock(shmDir, b)
	if err != nil {
		t.Fatal(err)
	}
	want, err := WriteCompressed(diskA, b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Writer{Sync: true}.CopyCompressed(fi.Path, diskB)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != 21 || got.CRC32C != fi.CRC32C || got.Rows != 500 || got.Table != "events" ||
		got.MinTime != b.MinTime || got.MaxTime != b.MaxTime || got.Size != want.Size {
		t.Fatalf("CopyCompressed info %+v; want the block's, size %d", got, want.Size)
	}
	a, _ := os.ReadFile(want.Path)
	c, _ := os.ReadFile(got.Path)
	if !bytes.Equal(a, c) {
		t.Fatal("copy differs from WriteCompressed's file")
	}
	rb, err := ReadCompressed(got.Path)
	if err != nil {
		t.Fatal(err)
	}
	sameBlock(t, b, rb)
	rb.Release()

	// A damaged source is refused and leaves nothing behind.
	data, _ := os.ReadFile(fi.Path)
	data[len(data)/2] ^= 0x10
	bad := filepath.Join(shmDir, FileName(22))
	if err := os.WriteFile(bad, data, 0o600); err != nil {
		t.Fatal(err)
	}
	empty := t.TempDir()
	if _, err := (Writer{}).CopyCompressed(bad, empty); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("copy of a damaged file: %v, want ErrCorrupt", err)
	}
	if ents, _ := os.ReadDir(empty); len(ents) != 0 {
		t.Fatalf("a refused copy left %d files", len(ents))
	}
	if crc, err := VerifyBlockSum(fi.Path); err != nil || crc != fi.CRC32C {
		t.Fatalf("VerifyBlockSum = %08x, %v; want %08x", crc, err, fi.CRC32C)
	}
}

func TestAttachBlockDeferred(t *testing.T) {
	dir := t.TempDir()
	b := mixedBlock(t, 31, 400)
	defer b.Release()
	fi, err := WriteBlock(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	mb := fi.ManifestBlock()
	got, verify, err := AttachBlockDeferred(dir, mb)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(); err != nil {
		t.Fatal(err)
	}
	sameBlock(t, b, got)
	got.Release()

	// A value byte flipped: attaching cannot see it (by design), verify does.
	data, _ := os.ReadFile(fi.Path)
	// Flip a byte well inside the data area (after the header, before the trailer).
	data[len(data)-trailerLen-100] ^= 0x01
	if err := os.WriteFile(fi.Path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	got, verify, err = AttachBlockDeferred(dir, mb)
	if err != nil {
		t.Fatalf("a flipped data byte should attach (the check is deferred): %v", err)
	}
	if err := verify(); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("verify of a damaged block: %v, want ErrCorrupt", err)
	}
	got.Release()

	// A damaged header is refused at once.
	data[70] ^= 0x01
	if err := os.WriteFile(fi.Path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _, err := AttachBlockDeferred(dir, mb); err == nil {
		got.Release()
		t.Fatal("a damaged header attached")
	}
}

// TestAttacher attaches blocks of one directory through an Attacher: relative to
// the open directory, with names shared between blocks, and no array built before
// verify passed.
func TestAttacher(t *testing.T) {
	dir := t.TempDir()
	var want []*block.Block
	var mbs []ManifestBlock
	for i := range 3 {
		b := mixedBlock(t, uint64(50+i), 300+i)
		defer b.Release()
		fi, err := WriteBlock(dir, b)
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, b)
		mbs = append(mbs, fi.ManifestBlock())
	}
	at, err := NewAttacher(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got []*block.Block
	for i, mb := range mbs {
		b, verify, err := at.Attach(mb)
		if err != nil {
			t.Fatal(err)
		}
		defer b.Release()
		for _, c := range b.Columns {
			if c.Arr != nil {
				t.Fatalf("block %d column %q has an array before verify", i, c.Name)
			}
		}
		if err := verify(); err != nil {
			t.Fatal(err)
		}
		sameBlock(t, want[i], b)
		got = append(got, b)
	}
	if err := at.Close(); err != nil {
		t.Fatal(err)
	}
	for i := range got[0].Columns {
		a, b := got[0].Columns[i].Name, got[2].Columns[i].Name
		if a != b || unsafe.StringData(a) != unsafe.StringData(b) {
			t.Errorf("column %d: names %q and %q are not one shared string", i, a, b)
		}
	}
	if _, _, err := at.Attach(mbs[0]); err == nil {
		t.Error("attached through a closed Attacher")
	}
	if _, err := NewAttacher(filepath.Join(dir, "missing")); err == nil {
		t.Error("NewAttacher of a missing directory succeeded")
	}
}

// TestDeferredAttachEveryByteFlipped flips every byte of a block file on disk and
// attaches it the deferred way (header, trailer and last offsets read with pread):
// attach plus verify must refuse exactly what the full open plus checksum refuses,
// and never panic.
func TestDeferredAttachEveryByteFlipped(t *testing.T) {
	dir := t.TempDir()
	b := buildBlock(t, "t", 41, []testCol{
		{"time", block.TypeInt, times(10, 6)},
		{"n", block.TypeInt, []any{int64(-1), nil, int64(5), int64(1 << 40), int64(0), int64(3)}},
		{"s", block.TypeString, []any{"a", "bb", nil, "a", "", "ccc"}},
		{"tags", block.TypeSet, []any{[]string{"x"}, nil, []string{}, []string{"y", "x"}, nil, []string{"z"}}},
	})
	defer b.Release()
	fi, err := WriteBlock(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(fi.Path)
	if err != nil {
		t.Fatal(err)
	}
	mb := fi.ManifestBlock()
	for i := range orig {
		d := append([]byte(nil), orig...)
		d[i] ^= 0x04
		if err := os.WriteFile(fi.Path, d, 0o600); err != nil {
			t.Fatal(err)
		}
		got, verify, err := AttachBlockDeferred(dir, mb)
		if err == nil {
			err = verify()
			got.Release()
		}
		full, ferr := OpenBlock(fi.Path)
		if ferr == nil {
			ferr = VerifyBlock(fi.Path)
			full.Release()
		}
		if err == nil || ferr == nil {
			t.Fatalf("flipped byte %d: deferred attach+verify says %v, open+verify says %v; both must refuse", i, err, ferr)
		}
	}
}

func TestOpenBlockVerified(t *testing.T) {
	dir := t.TempDir()
	b := mixedBlock(t, 51, 300)
	defer b.Release()
	fi, err := WriteBlock(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	got, crc, err := OpenBlockVerified(fi.Path)
	if err != nil {
		t.Fatal(err)
	}
	if crc != fi.CRC32C {
		t.Errorf("checksum %08x, want %08x", crc, fi.CRC32C)
	}
	sameBlock(t, b, got)
	got.Release()
	data, _ := os.ReadFile(fi.Path)
	data[len(data)-trailerLen-1] ^= 1 // data, not header: only the checksum sees it
	if err := os.WriteFile(fi.Path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, _, err := OpenBlockVerified(fi.Path); !errors.Is(err, ErrCorrupt) {
		if got != nil {
			got.Release()
		}
		t.Fatalf("damaged block: %v, want ErrCorrupt", err)
	}
}
