package shm

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
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
