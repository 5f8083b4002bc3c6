package shm

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/reef-db/reef/block"
)

var rewrite = flag.Bool("rewrite", false, "rewrite the golden files and fuzz seeds under testdata/")

const (
	goldenBlockPath     = "testdata/block-v1.blk"
	goldenManifestDir   = "testdata/manifest-v1"
	fuzzOpenBlockDir    = "testdata/fuzz/FuzzOpenBlock"
	fuzzReadManifestDir = "testdata/fuzz/FuzzReadManifest"
)

// goldenBlock is the block of testdata/block-v1.blk: every column form, small.
func goldenBlock(t testing.TB) *block.Block {
	t.Helper()
	return buildBlock(t, "golden", 0x0102030405060708, []testCol{
		{"time", block.TypeInt, []any{int64(1_700_000_000), int64(1_700_000_002), int64(1_700_000_001), int64(1_700_000_005)}},
		{"n", block.TypeInt, []any{int64(-1), nil, int64(1 << 40), int64(7)}},
		{"small", block.TypeInt, []any{int64(300), int64(301), nil, int64(555)}},
		{"f", block.TypeFloat, []any{1.5, nil, -2.25, 0.0}},
		{"s", block.TypeString, []any{"a", "bb", nil, "a"}},
		{"tags", block.TypeSet, []any{[]string{"x", "y"}, nil, []string{}, []string{"y"}}},
		{"nothing", block.TypeString, []any{nil, nil, nil, nil}},
	})
}

func goldenManifest() *Manifest {
	return &Manifest{
		Version: LayoutVersion, Generation: 3, LeafID: "leaf-1", CreatedUnix: 1_700_000_000,
		Blocks: []ManifestBlock{
			{File: FileName(0x0102030405060708), Size: 2048, Rows: 4, SchemaHash: 0xfedcba9876543210,
				CRC32C: 0x01020304, Table: "golden", MinTime: 1_700_000_000, MaxTime: 1_700_000_005},
		},
	}
}

func writeSeed(t *testing.T, dir, name string, data []byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	seed := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", data)
	if err := os.WriteFile(filepath.Join(dir, name), []byte(seed), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGolden opens the checked-in version 1 files and checks that the writer
// still produces them byte for byte: a change to the layout must come with a new
// version. Run with -rewrite to regenerate them and the fuzz seeds.
func TestGolden(t *testing.T) {
	b := goldenBlock(t)
	defer b.Release()
	fi, err := WriteBlock(t.TempDir(), b)
	if err != nil {
		t.Fatal(err)
	}
	written, err := os.ReadFile(fi.Path)
	if err != nil {
		t.Fatal(err)
	}
	if *rewrite {
		rewriteTestdata(t, written)
	}

	golden, err := os.ReadFile(goldenBlockPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(golden, written) {
		t.Errorf("the writer's bytes differ from %s: the layout changed without a new version (or run with -rewrite)", goldenBlockPath)
	}
	got, err := OpenBlock(goldenBlockPath)
	if err != nil {
		t.Fatal(err)
	}
	sameBlock(t, b, got)
	got.Release()
	if err := VerifyBlock(goldenBlockPath); err != nil {
		t.Fatal(err)
	}

	m, err := ReadManifest(goldenManifestDir)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(m, goldenManifest()) {
		t.Fatalf("golden manifest = %+v, want %+v", m, goldenManifest())
	}
}

func rewriteTestdata(t *testing.T, blk []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(goldenBlockPath), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goldenBlockPath, blk, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(goldenManifestDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteManifest(goldenManifestDir, goldenManifest()); err != nil {
		t.Fatal(err)
	}
	man, err := os.ReadFile(filepath.Join(goldenManifestDir, ManifestName))
	if err != nil {
		t.Fatal(err)
	}

	writeSeed(t, fuzzOpenBlockDir, "golden", blk)
	writeSeed(t, fuzzOpenBlockDir, "truncated", blk[:len(blk)/2])
	v2 := append([]byte(nil), blk...)
	v2[8] = 2
	writeSeed(t, fuzzOpenBlockDir, "version2", v2)
	// The last data byte flipped: the file opens but fails its checksum.
	bad := append([]byte(nil), blk...)
	bad[len(blk)-trailerLen-1] ^= 0xff
	writeSeed(t, fuzzOpenBlockDir, "data-damage", bad)

	writeSeed(t, fuzzReadManifestDir, "golden", man)
	writeSeed(t, fuzzReadManifestDir, "json-only", man[bytes.IndexByte(man, '\n')+1:])
	writeSeed(t, fuzzReadManifestDir, "empty", []byte(`{"version":1,"leaf_id":"x","blocks":[]}`))
	writeSeed(t, fuzzReadManifestDir, "traversal",
		[]byte(`{"version":1,"leaf_id":"x","blocks":[{"file":"../0000000000000001.blk","size":100,"rows":1,"table":"t"}]}`))
}

func FuzzOpenBlock(f *testing.F) {
	for _, b := range []*block.Block{goldenBlock(f), mixedBlock(f, 1, 40), handBlock(f)} {
		p, err := planBlock(b)
		if err != nil {
			f.Fatal(err)
		}
		var buf bytes.Buffer
		if _, err := p.writeTo(&buf); err != nil {
			f.Fatal(err)
		}
		f.Add(buf.Bytes())
		b.Release()
	}
	// One file, rewritten per input: the fuzz function runs one input at a time
	// in a process, and a directory per input would cost more than the test.
	path := filepath.Join(f.TempDir(), FileName(1))
	f.Fuzz(func(t *testing.T, data []byte) {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := OpenBlock(path)
		if err == nil {
			touchAll(b)
			b.Release()
		} else if !IsCorrupt(err) {
			t.Fatalf("OpenBlock error wraps neither ErrCorrupt nor ErrVersion: %v", err)
		}
		verr := VerifyBlock(path)
		if verr != nil && !IsCorrupt(verr) {
			t.Fatalf("VerifyBlock error untyped: %v", verr)
		}
		hb, herr := ReadBlockFile(path)
		if (herr == nil) != (err == nil && verr == nil) {
			t.Fatalf("ReadBlockFile: %v, but OpenBlock: %v and VerifyBlock: %v", herr, err, verr)
		}
		if herr == nil {
			touchAll(hb)
		}
		// Behind a repaired header checksum the structural checks alone must
		// keep a query from going out of bounds.
		d := append([]byte(nil), data...)
		if fixHeaderCRC(d) {
			openDamaged(d)
		}
	})
}

func FuzzReadManifest(f *testing.F) {
	seedDir := f.TempDir()
	if err := WriteManifest(seedDir, goldenManifest()); err != nil {
		f.Fatal(err)
	}
	man, err := os.ReadFile(filepath.Join(seedDir, ManifestName))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(man)
	f.Add(man[bytes.IndexByte(man, '\n')+1:])
	dir, dir2 := f.TempDir(), f.TempDir() // reused: one input at a time per process
	f.Fuzz(func(t *testing.T, data []byte) {
		check := func() {
			m, err := ReadManifest(dir)
			if err != nil {
				if !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrVersion) {
					t.Fatalf("untyped error: %v", err)
				}
				return
			}
			// What was read can be written and reads back the same.
			if err := WriteManifest(dir2, m); err != nil {
				t.Fatalf("cannot write back a manifest that was read: %v", err)
			}
			m2, err := ReadManifest(dir2)
			if err != nil || !reflect.DeepEqual(m, m2) {
				t.Fatalf("round trip: %+v, %v; want %+v", m2, err, m)
			}
		}
		if err := os.WriteFile(filepath.Join(dir, ManifestName), data, 0o600); err != nil {
			t.Fatal(err)
		}
		check()
		// The input as the JSON part behind a correct header line.
		writeRawManifest(t, dir, LayoutVersion, data)
		check()
	})
}

// FuzzManifestJSON checks the manifest's fast JSON path against encoding/json:
// whatever the canonical scanner accepts, encoding/json decodes to the same
// Manifest. Seeds are manifests as WriteManifest writes them.
func FuzzManifestJSON(f *testing.F) {
	for _, m := range []*Manifest{
		goldenManifest(),
		{Version: 1, LeafID: "l", Blocks: nil},
		{Version: 1, LeafID: "l", Blocks: []ManifestBlock{}},
		{Version: 1, Generation: 1 << 63, LeafID: "<a&b>", CreatedUnix: -5, Blocks: []ManifestBlock{
			{File: FileName(1), Size: 100, Rows: 1, SchemaHash: math.MaxUint64, CRC32C: math.MaxUint32, Table: "t", MinTime: -1, MaxTime: 0},
			{File: FileName(2), Size: 200, Rows: 2, Table: "ü", MinTime: 3, MaxTime: 4},
		}},
	} {
		body, err := json.Marshal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(append(body, '\n'))
	}
	f.Add([]byte(`{"version":-0,"generation":-0,"leaf_id":"l","created_unix":-0,"blocks":null}` + "\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		fast, ok := decodeCanonicalManifest(body)
		if !ok {
			return
		}
		std, err := decodeManifestStd(body)
		if err != nil {
			t.Fatalf("the fast path read %q, encoding/json refuses it: %v", body, err)
		}
		if !reflect.DeepEqual(fast, std) {
			t.Fatalf("the fast path read %+v, encoding/json %+v", fast, std)
		}
	})
}
