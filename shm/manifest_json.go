package shm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"unicode/utf8"
)

// decodeManifestJSON decodes the JSON part of a manifest, strictly: one JSON
// object with only the keys of Manifest and ManifestBlock.
//
// A manifest lists every block of a leaf (thousands, about 180 bytes of JSON each)
// and is read on the path of a handoff start, where encoding/json takes tens of
// milliseconds for a large one. What WriteManifest writes is json.Marshal's
// canonical form, so that form is read by a small scanner first
// (decodeCanonicalManifest, about twenty times faster); anything else — other key
// order, whitespace, escapes in strings — goes to encoding/json, which decides.
// The scanner only accepts input that encoding/json decodes to the same Manifest
// (FuzzManifestJSON checks it).
func decodeManifestJSON(body []byte) (*Manifest, error) {
	if m, ok := decodeCanonicalManifest(body); ok {
		return m, nil
	}
	return decodeManifestStd(body)
}

// decodeManifestStd is the strict encoding/json decoder.
func decodeManifestStd(body []byte) (*Manifest, error) {
	m := &Manifest{}
	d := json.NewDecoder(bytes.NewReader(body))
	d.DisallowUnknownFields()
	if err := d.Decode(m); err != nil {
		return nil, err
	}
	if _, err := d.Token(); err != io.EOF {
		return nil, fmt.Errorf("data after the JSON document")
	}
	return m, nil
}

// canonScan reads json.Marshal's output for Manifest. Any surprise clears ok.
type canonScan struct {
	b  []byte
	i  int
	ok bool
}

func (s *canonScan) lit(l string) {
	if s.ok && bytes.HasPrefix(s.b[s.i:], []byte(l)) {
		s.i += len(l)
		return
	}
	s.ok = false
}

// str reads a string without escapes or control characters, in valid UTF-8:
// what json.Marshal writes for such a string, and what encoding/json reads back
// unchanged.
func (s *canonScan) str() string {
	s.lit(`"`)
	if !s.ok {
		return ""
	}
	start := s.i
	for s.i < len(s.b) {
		c := s.b[s.i]
		switch {
		case c == '"':
			v := s.b[start:s.i]
			s.i++
			if !utf8.Valid(v) {
				s.ok = false
				return ""
			}
			return string(v)
		case c == '\\' || c < 0x20:
			s.ok = false
			return ""
		}
		s.i++
	}
	s.ok = false
	return ""
}

// number reads -?(0|[1-9][0-9]*) and returns its sign and magnitude, clearing ok
// when the magnitude does not fit 64 bits.
func (s *canonScan) number() (neg bool, mag uint64) {
	if !s.ok {
		return false, 0
	}
	if s.i < len(s.b) && s.b[s.i] == '-' {
		neg = true
		s.i++
	}
	start := s.i
	for s.i < len(s.b) && s.b[s.i] >= '0' && s.b[s.i] <= '9' {
		d := uint64(s.b[s.i] - '0')
		if mag > (math.MaxUint64-d)/10 {
			s.ok = false
			return false, 0
		}
		mag = mag*10 + d
		s.i++
	}
	if s.i == start || (s.b[start] == '0' && s.i-start > 1) {
		s.ok = false
	}
	return neg, mag
}

func (s *canonScan) int64() int64 {
	neg, mag := s.number()
	switch {
	case !neg && mag <= math.MaxInt64:
		return int64(mag)
	case neg && mag <= 1<<63:
		return int64(-mag)
	}
	s.ok = false
	return 0
}

func (s *canonScan) uint64() uint64 {
	neg, mag := s.number()
	if neg {
		s.ok = false // encoding/json refuses a sign for an unsigned field, even -0
	}
	return mag
}

// decodeCanonicalManifest reads body if it is exactly in json.Marshal's form,
// followed by one newline; ok is false otherwise.
func decodeCanonicalManifest(body []byte) (*Manifest, bool) {
	s := &canonScan{b: body, ok: true}
	m := &Manifest{}
	s.lit(`{"version":`)
	v := s.int64()
	if v < math.MinInt || v > math.MaxInt {
		return nil, false
	}
	m.Version = int(v)
	s.lit(`,"generation":`)
	m.Generation = s.uint64()
	s.lit(`,"leaf_id":`)
	m.LeafID = s.str()
	s.lit(`,"created_unix":`)
	m.CreatedUnix = s.int64()
	s.lit(`,"blocks":`)
	if s.ok && bytes.HasPrefix(s.b[s.i:], []byte("null")) {
		s.i += len("null")
	} else {
		s.lit(`[`)
		// An entry takes at least minEntryJSON bytes: room for all of them at once.
		const minEntryJSON = len(`{"file":"0000000000000001.blk","size":0,"rows":0,"schema_hash":"0","crc32c":0,"table":"t","min_time":0,"max_time":0},`)
		m.Blocks = make([]ManifestBlock, 0, min(MaxManifestBlocks, len(body)/minEntryJSON))
		for s.ok && len(m.Blocks) <= MaxManifestBlocks {
			if len(m.Blocks) > 0 {
				if s.i < len(s.b) && s.b[s.i] == ']' {
					break
				}
				s.lit(`,`)
			} else if s.i < len(s.b) && s.b[s.i] == ']' {
				break
			}
			var mb ManifestBlock
			s.lit(`{"file":`)
			mb.File = s.str()
			s.lit(`,"size":`)
			mb.Size = s.int64()
			s.lit(`,"rows":`)
			rows := s.int64()
			if rows < math.MinInt || rows > math.MaxInt {
				return nil, false
			}
			mb.Rows = int(rows)
			s.lit(`,"schema_hash":"`)
			mb.SchemaHash = s.uint64()
			s.lit(`","crc32c":`)
			crc := s.uint64()
			if crc > math.MaxUint32 {
				return nil, false
			}
			mb.CRC32C = uint32(crc)
			s.lit(`,"table":`)
			mb.Table = s.str()
			s.lit(`,"min_time":`)
			mb.MinTime = s.int64()
			s.lit(`,"max_time":`)
			mb.MaxTime = s.int64()
			s.lit(`}`)
			m.Blocks = append(m.Blocks, mb)
		}
		s.lit(`]`)
	}
	s.lit("}\n")
	if !s.ok || s.i != len(s.b) {
		return nil, false
	}
	return m, true
}
