package shm

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/reef-db/reef/block"
)

func testManifest() *Manifest {
	return &Manifest{
		Generation: 7, LeafID: "leaf-3", CreatedUnix: 1_700_000_123,
		Blocks: []ManifestBlock{
			{File: FileName(1), Size: 4096, Rows: 100, SchemaHash: 1<<63 + 5, CRC32C: 0xdeadbeef, Table: "events", MinTime: 10, MaxTime: 20},
			{File: FileName(2), Size: 100, Rows: block.MaxRows, SchemaHash: 0, CRC32C: 0, Table: "t", MinTime: -5, MaxTime: -5},
		},
	}
}

func TestManifestRoundTrip(t *testing.T) {
	dir := t.TempDir()
	if _, err := ReadManifest(dir); !errors.Is(err, ErrNoManifest) {
		t.Fatalf("empty dir: %v, want ErrNoManifest", err)
	}
	m := testManifest()
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	if m.Version != 0 {
		t.Fatal("WriteManifest changed its argument")
	}
	got, err := ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	want := *m
	want.Version = LayoutVersion
	if !reflect.DeepEqual(got, &want) {
		t.Fatalf("got %+v\nwant %+v", got, &want)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("directory holds %d files, want only the manifest", len(ents))
	}
	// An empty handoff is valid.
	if err := WriteManifest(dir, &Manifest{LeafID: "x"}); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadManifest(dir); err != nil || len(got.Blocks) != 0 {
		t.Fatalf("empty manifest: %+v, %v", got, err)
	}
	if err := RemoveManifest(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadManifest(dir); !errors.Is(err, ErrNoManifest) {
		t.Fatalf("after remove: %v, want ErrNoManifest", err)
	}
	if err := RemoveManifest(dir); err != nil {
		t.Fatalf("second remove: %v", err)
	}
}

func TestManifestRejectsBadEntries(t *testing.T) {
	for _, tc := range []struct {
		name   string
		modify func(m *Manifest)
	}{
		{"version", func(m *Manifest) { m.Version = 2 }},
		{"no leaf id", func(m *Manifest) { m.LeafID = "" }},
		{"long leaf id", func(m *Manifest) { m.LeafID = strings.Repeat("x", 257) }},
		{"path traversal", func(m *Manifest) { m.Blocks[0].File = "../" + FileName(1) }},
		{"separator", func(m *Manifest) { m.Blocks[0].File = "a/" + FileName(1) }},
		{"dot dot", func(m *Manifest) { m.Blocks[0].File = ".." }},
		{"empty name", func(m *Manifest) { m.Blocks[0].File = "" }},
		{"not a block name", func(m *Manifest) { m.Blocks[0].File = "MANIFEST" }},
		{"compressed name", func(m *Manifest) { m.Blocks[0].File = CompressedFileName(1) }},
		{"duplicate", func(m *Manifest) { m.Blocks[1].File = m.Blocks[0].File }},
		{"tiny size", func(m *Manifest) { m.Blocks[0].Size = 3 }},
		{"huge size", func(m *Manifest) { m.Blocks[0].Size = MaxFileSize + 1 }},
		{"no rows", func(m *Manifest) { m.Blocks[0].Rows = 0 }},
		{"too many rows", func(m *Manifest) { m.Blocks[0].Rows = block.MaxRows + 1 }},
		{"no table", func(m *Manifest) { m.Blocks[0].Table = "" }},
		{"time order", func(m *Manifest) { m.Blocks[0].MinTime = 30 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := testManifest()
			tc.modify(m)
			dir := t.TempDir()
			if err := WriteManifest(dir, m); err == nil {
				t.Fatal("WriteManifest accepted it")
			}
			// Written by hand (checksum right), the reader must refuse it too.
			m.Version = max(m.Version, LayoutVersion)
			writeRawManifest(t, dir, m.Version, mustJSON(t, m))
			if _, err := ReadManifest(dir); err == nil {
				t.Fatal("ReadManifest accepted it")
			} else if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v is not typed", err)
			}
		})
	}
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeRawManifest(t testing.TB, dir string, version int, body []byte) {
	t.Helper()
	head := fmt.Sprintf("%s version=%d length=%d crc32c=%08x\n", manifestMagic, version, len(body), crc32c(body))
	if err := os.WriteFile(filepath.Join(dir, ManifestName), append([]byte(head), body...), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestManifestDamage(t *testing.T) {
	dir := t.TempDir()
	if err := WriteManifest(dir, testManifest()); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ManifestName)
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	read := func(d []byte) error {
		t.Helper()
		if err := os.WriteFile(path, d, 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := ReadManifest(dir)
		return err
	}
	for i := range orig {
		d := append([]byte(nil), orig...)
		d[i] ^= 0x04
		_, err := parseManifest(d) // ReadManifest without the file
		if err == nil {
			t.Fatalf("flipped byte %d (%q) accepted", i, orig[i])
		}
		if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
			t.Fatalf("flipped byte %d: untyped error %v", i, err)
		}
	}
	for _, n := range []int{0, 1, 20, len(orig) - 1} {
		if err := read(orig[:n]); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if err := read(append(append([]byte(nil), orig...), ' ')); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("extended: %v", err)
	}
	for _, edit := range [][2]string{
		{"version=1", "version=01"}, {" length=", "  length="}, {"crc32c=", "crc32c=0x"}, {"\n", "\r\n"},
	} {
		d := strings.Replace(string(orig), edit[0], edit[1], 1)
		if err := read([]byte(d)); !errors.Is(err, ErrCorrupt) {
			t.Errorf("header line edited %q → %q: %v", edit[0], edit[1], err)
		}
	}
	v2 := strings.Replace(string(orig), "version=1", "version=2", 1)
	if err := read([]byte(v2)); !errors.Is(err, ErrVersion) {
		t.Fatalf("version 2: %v", err)
	}
	for _, body := range []string{
		`{"version":1,"leaf_id":"x","blocks":[],"extra":1}` + "\n",
		`{"version":1,"leaf_id":"x"} {}` + "\n",
		`{"version":2,"leaf_id":"x"}` + "\n",
		`[]`,
		`{"version":1,"leaf_id":"x","blocks":[{"file":"0000000000000001.blk","size":-1}]}`,
		`{"version":1,"leaf_id":"x","blocks":[{"file":"0000000000000001.blk","schema_hash":5}]}`,
	} {
		writeRawManifest(t, dir, 1, []byte(body))
		if _, err := ReadManifest(dir); !errors.Is(err, ErrCorrupt) {
			t.Errorf("body %s: %v", body, err)
		}
	}
	// Oversized (a sparse file: nothing is written).
	if err := os.Truncate(path, MaxManifestSize+10); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadManifest(dir); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("oversized: %v", err)
	}
}

func TestAttachBlock(t *testing.T) {
	dir := t.TempDir()
	b := mixedBlock(t, 11, 300)
	defer b.Release()
	fi, err := WriteBlock(dir, b)
	if err != nil {
		t.Fatal(err)
	}
	m := &Manifest{LeafID: "l", Blocks: []ManifestBlock{fi.ManifestBlock()}}
	if err := WriteManifest(dir, m); err != nil {
		t.Fatal(err)
	}
	m, err = ReadManifest(dir)
	if err != nil {
		t.Fatal(err)
	}
	mb := m.Blocks[0]
	got, err := AttachBlock(dir, mb)
	if err != nil {
		t.Fatal(err)
	}
	sameBlock(t, b, got)
	got.Release()
	if err := VerifyManifestBlock(dir, mb); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name   string
		modify func(mb *ManifestBlock)
	}{
		{"size", func(mb *ManifestBlock) { mb.Size++ }},
		{"crc", func(mb *ManifestBlock) { mb.CRC32C ^= 1 }},
		{"rows", func(mb *ManifestBlock) { mb.Rows-- }},
		{"table", func(mb *ManifestBlock) { mb.Table = "other" }},
		{"time", func(mb *ManifestBlock) { mb.MaxTime++ }},
		{"schema", func(mb *ManifestBlock) { mb.SchemaHash ^= 1 }},
		{"missing file", func(mb *ManifestBlock) { mb.File = FileName(999) }},
		{"unsafe name", func(mb *ManifestBlock) { mb.File = "../x" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bad := mb
			tc.modify(&bad)
			if got, err := AttachBlock(dir, bad); err == nil {
				got.Release()
				t.Fatal("attached")
			}
		})
	}
	bad := mb
	bad.CRC32C ^= 1
	if err := VerifyManifestBlock(dir, bad); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("VerifyManifestBlock with wrong crc: %v", err)
	}
}

func TestSchemaHash(t *testing.T) {
	a := buildBlock(t, "t", 1, []testCol{{"time", block.TypeInt, times(1, 3)}, {"x", block.TypeInt, []any{int64(1), int64(2), int64(3)}}})
	// Same columns, different values and physical width: same hash.
	b := buildBlock(t, "u", 2, []testCol{{"time", block.TypeInt, times(1, 3)}, {"x", block.TypeInt, []any{int64(1), int64(1 << 40), nil}}})
	c := buildBlock(t, "t", 1, []testCol{{"time", block.TypeInt, times(1, 3)}, {"x", block.TypeFloat, []any{1.0, 2.0, 3.0}}})
	d := buildBlock(t, "t", 1, []testCol{{"time", block.TypeInt, times(1, 3)}, {"y", block.TypeInt, []any{int64(1), int64(2), int64(3)}}})
	e := buildBlock(t, "t", 1, []testCol{{"x", block.TypeInt, []any{int64(1), int64(2), int64(3)}}, {"time", block.TypeInt, times(1, 3)}})
	if SchemaHash(a) != SchemaHash(b) {
		t.Error("equal schemas hash differently")
	}
	for name, o := range map[string]*block.Block{"type": c, "name": d, "order": e} {
		if SchemaHash(a) == SchemaHash(o) {
			t.Errorf("schemas differing in %s hash equal", name)
		}
	}
	// The layout's definition: FNV-1a over (u32 name length, u8 type, name) per
	// column. Manifests written by other builds carry this value.
	for _, blk := range []*block.Block{a, c, d, e} {
		h := fnv.New64a()
		for _, col := range blk.Columns {
			h.Write(binary.LittleEndian.AppendUint32(nil, uint32(len(col.Name))))
			h.Write([]byte{uint8(col.Type)})
			h.Write([]byte(col.Name))
		}
		if got, want := SchemaHash(blk), h.Sum64(); got != want {
			t.Errorf("SchemaHash %016x, FNV-1a of the definition %016x", got, want)
		}
	}
}

func TestDir(t *testing.T) {
	root := filepath.Join(t.TempDir(), "a", "b")
	d, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []uint64{30, 2, 1 << 50} {
		b := buildBlock(t, "t", id, []testCol{{"time", block.TypeInt, times(1, 2)}})
		if _, err := WriteBlock(d.Path(), b); err != nil {
			t.Fatal(err)
		}
		if id == 2 {
			if _, err := WriteCompressed(d.Path(), b); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, name := range []string{tempPrefix + FileName(5) + "-123", tempPrefix + ManifestName + "-9", "notes.txt", "1.blk"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	ids, err := d.Blocks()
	if err != nil || !reflect.DeepEqual(ids, []uint64{2, 30, 1 << 50}) {
		t.Fatalf("Blocks = %v, %v", ids, err)
	}
	if ids, err := d.CompressedBlocks(); err != nil || !reflect.DeepEqual(ids, []uint64{2}) {
		t.Fatalf("CompressedBlocks = %v, %v", ids, err)
	}
	d2, err := OpenDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := d2.RemoveTemp(); n != 0 {
		t.Fatalf("temporary files left after OpenDir: %d", n)
	}
	if err := d2.Remove(2); err != nil {
		t.Fatal(err)
	}
	if err := d2.Remove(12345); err != nil {
		t.Fatalf("removing a missing block: %v", err)
	}
	ents, _ := os.ReadDir(root)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	want := []string{FileName(30), FileName(1 << 50), "1.blk", "notes.txt"}
	if !sameSet(names, want) {
		t.Fatalf("directory holds %v, want %v", names, want)
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}
