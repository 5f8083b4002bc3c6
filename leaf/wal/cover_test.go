package wal

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"
)

func TestCoverageAdd(t *testing.T) {
	var c Coverage
	// Two writers interleave; one skips a rejected line (4).
	for _, a := range []struct {
		seq  uint64
		line int
	}{{7, 1}, {7, 2}, {5, 1}, {7, 3}, {7, 5}, {7, 6}, {5, 2}, {5, 3}} {
		c.Add(a.seq, a.line)
	}
	want := []Span{{7, 1, 2}, {5, 1, 1}, {7, 3, 3}, {7, 5, 6}, {5, 2, 3}}
	if !reflect.DeepEqual(c.Spans, want) {
		t.Fatalf("spans %v, want %v", c.Spans, want)
	}
	if c.MinSeq() != 5 || c.Lines() != 8 {
		t.Fatalf("min seq %d, lines %d; want 5, 8", c.MinSeq(), c.Lines())
	}
	cl := c.Clone()
	c.Reset()
	if c.MinSeq() != 0 || len(c.Spans) != 0 || len(cl.Spans) != 5 || cl.MinSeq() != 5 {
		t.Fatalf("reset or clone wrong: %+v %+v", c, cl)
	}
}

func TestCoverFile(t *testing.T) {
	var c Coverage
	for i := 1; i <= 100; i++ {
		c.Add(uint64(10+i%3), i)
	}
	path := filepath.Join(t.TempDir(), "0000000000000042.cov")
	for _, sync := range []bool{false, true} {
		if err := WriteCoverFile(path, 0x42, &c, sync); err != nil {
			t.Fatal(err)
		}
		id, got, err := ReadCoverFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if id != 0x42 || !reflect.DeepEqual(got.Spans, c.Spans) || got.MinSeq() != c.MinSeq() {
			t.Fatalf("read back id %x, %v; want 42, %v", id, got.Spans, c.Spans)
		}
	}
	var empty Coverage
	data := AppendCover(nil, 1, &empty)
	if _, got, err := DecodeCover(data); err != nil || len(got.Spans) != 0 {
		t.Fatalf("empty coverage: %v, %v", got, err)
	}
}

func TestDecodeCoverDamage(t *testing.T) {
	var c Coverage
	c.Add(3, 1)
	c.Add(3, 2)
	good := AppendCover(nil, 9, &c)
	cases := map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-1],
		"extended":  append(append([]byte(nil), good...), 0),
	}
	for i := range good {
		d := append([]byte(nil), good...)
		d[i] ^= 1
		cases["flip"+string(rune('a'+i%26))+string(rune('0'+i/26))] = d
	}
	for name, d := range cases {
		if _, _, err := DecodeCover(d); !errors.Is(err, ErrBadCover) {
			t.Errorf("%s: DecodeCover = %v, want ErrBadCover", name, err)
		}
	}
}
