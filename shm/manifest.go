package shm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/reef-db/reef/block"
)

// The manifest is the last file of a handoff: its presence, with a version this
// build reads, says every block file it lists was complete when the old process
// exited. Its layout is drawn in the package comment.

// ManifestName is the manifest's file name inside a leaf's shm directory.
const ManifestName = "MANIFEST"

const (
	manifestMagic = "REEF-MANIFEST"
	// MaxManifestSize bounds a manifest file.
	MaxManifestSize = 64 << 20
	// MaxManifestBlocks bounds the blocks one manifest lists.
	MaxManifestBlocks = 1 << 18
	maxLeafIDLen      = 256
	maxManifestLine   = 128
)

// Manifest lists the block files of a handoff.
type Manifest struct {
	Version     int             `json:"version"` // LayoutVersion
	Generation  uint64          `json:"generation"`
	LeafID      string          `json:"leaf_id"`
	CreatedUnix int64           `json:"created_unix"`
	Blocks      []ManifestBlock `json:"blocks"`
}

// ManifestBlock describes one block file of a manifest.
type ManifestBlock struct {
	File       string `json:"file"` // FileName(id): a name in the manifest's directory
	Size       int64  `json:"size"` // file length
	Rows       int    `json:"rows"`
	SchemaHash uint64 `json:"schema_hash,string"`
	CRC32C     uint32 `json:"crc32c"` // the file checksum (the layout trailer's)
	Table      string `json:"table"`
	MinTime    int64  `json:"min_time"`
	MaxTime    int64  `json:"max_time"`
}

// WriteManifest writes m as dir/MANIFEST: to a temporary file, fsynced, renamed into
// place, and the directory fsynced. Write it after every block file it lists. A zero
// m.Version means LayoutVersion; any other version than that is an error, as is an
// entry that ReadManifest would reject.
func WriteManifest(dir string, m *Manifest) error {
	path := filepath.Join(dir, ManifestName)
	fail := func(err error) error { return fmt.Errorf("cannot write manifest %s: %w", path, err) }
	mm := *m
	if mm.Version == 0 {
		mm.Version = LayoutVersion
	}
	if err := validateManifest(&mm); err != nil {
		return fail(err)
	}
	body, err := json.Marshal(&mm)
	if err != nil {
		return fail(err)
	}
	body = append(body, '\n')
	if len(body) > MaxManifestSize-maxManifestLine {
		return fail(fmt.Errorf("manifest of %d bytes exceeds the limit %d", len(body), MaxManifestSize-maxManifestLine))
	}
	head := manifestLine(len(body), crc32.Checksum(body, castagnoli))

	f, err := os.CreateTemp(dir, tempPrefix+ManifestName+"-*")
	if err != nil {
		return fail(err)
	}
	tmp := f.Name()
	defer func() {
		if tmp != "" {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(append([]byte(head), body...)); err != nil {
		return fail(err)
	}
	if err := f.Sync(); err != nil {
		return fail(err)
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fail(err)
	}
	tmp = ""
	if err := syncDir(dir); err != nil {
		return fail(err)
	}
	return nil
}

// ReadManifest reads and checks dir/MANIFEST. A missing manifest is an error
// wrapping ErrNoManifest; a damaged one wraps ErrCorrupt, one of another version
// ErrVersion. The block files it lists are not looked at (see AttachBlock).
func ReadManifest(dir string) (*Manifest, error) {
	path := filepath.Join(dir, ManifestName)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cannot read manifest %s: %w", path, ErrNoManifest)
	}
	if err != nil {
		return nil, fmt.Errorf("cannot read manifest %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("cannot read manifest %s: %w", path, err)
	}
	if st.Size() > MaxManifestSize {
		return nil, fmt.Errorf("cannot read manifest %s: %w: %d bytes, limit %d", path, ErrCorrupt, st.Size(), MaxManifestSize)
	}
	// Read at its size, plus a byte to see it did not grow since: one allocation.
	data := make([]byte, 0, st.Size()+1)
	data, err = readAllInto(data, io.LimitReader(f, MaxManifestSize+1))
	if err != nil {
		return nil, fmt.Errorf("cannot read manifest %s: %w", path, err)
	}
	m, err := parseManifest(data)
	if err != nil {
		return nil, fmt.Errorf("cannot read manifest %s: %w", path, err)
	}
	return m, nil
}

func parseManifest(data []byte) (*Manifest, error) {
	if len(data) > MaxManifestSize {
		return nil, fmt.Errorf("%w: manifest is larger than %d bytes", ErrCorrupt, MaxManifestSize)
	}
	nl := bytes.IndexByte(data[:min(len(data), maxManifestLine)], '\n')
	if nl < 0 {
		return nil, fmt.Errorf("%w: no header line in the first %d bytes", ErrCorrupt, maxManifestLine)
	}
	fields := strings.Split(string(data[:nl]), " ")
	if len(fields) != 4 || fields[0] != manifestMagic {
		return nil, fmt.Errorf("%w: header line %q is not %q", ErrCorrupt, data[:nl], manifestMagic+" version=… length=… crc32c=…")
	}
	version, err := manifestField(fields[1], "version=", 10, 32)
	if err != nil {
		return nil, err
	}
	if version != LayoutVersion {
		return nil, fmt.Errorf("%w: manifest has version %d, this build reads %d", ErrVersion, version, LayoutVersion)
	}
	length, err := manifestField(fields[2], "length=", 10, 32)
	if err != nil {
		return nil, err
	}
	crc, err := manifestField(fields[3], "crc32c=", 16, 32)
	if err != nil {
		return nil, err
	}
	if line := manifestLine(int(length), uint32(crc)); line != string(data[:nl+1]) {
		return nil, fmt.Errorf("%w: header line %q is not in canonical form %q", ErrCorrupt, data[:nl], line[:len(line)-1])
	}
	body := data[nl+1:]
	if uint64(len(body)) != length {
		return nil, fmt.Errorf("%w: %d bytes of JSON, header line says %d (truncated?)", ErrCorrupt, len(body), length)
	}
	if got := crc32.Checksum(body, castagnoli); uint64(got) != crc {
		return nil, fmt.Errorf("%w: JSON checksum is %08x, header line says %08x", ErrCorrupt, got, crc)
	}
	m, err := decodeManifestJSON(body)
	if err != nil {
		return nil, fmt.Errorf("%w: bad JSON: %w", ErrCorrupt, err)
	}
	if m.Version != LayoutVersion {
		return nil, fmt.Errorf("%w: JSON says version %d, header line %d", ErrCorrupt, m.Version, LayoutVersion)
	}
	if err := validateManifest(m); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	return m, nil
}

// readAllInto appends all of r to buf, growing it only when r holds more than
// its capacity.
func readAllInto(buf []byte, r io.Reader) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// manifestLine is the header line (with its newline) of a JSON part of length
// bytes with checksum crc.
func manifestLine(length int, crc uint32) string {
	return fmt.Sprintf("%s version=%d length=%d crc32c=%08x\n", manifestMagic, LayoutVersion, length, crc)
}

func manifestField(f, key string, base, bits int) (uint64, error) {
	v, ok := strings.CutPrefix(f, key)
	if !ok {
		return 0, fmt.Errorf("%w: header field %q: want %q…", ErrCorrupt, f, key)
	}
	n, err := strconv.ParseUint(v, base, bits)
	if err != nil {
		return 0, fmt.Errorf("%w: header field %q: %w", ErrCorrupt, f, err)
	}
	return n, nil
}

// validateManifest checks the bounds of a manifest: a leaf id of 1..256 bytes, at
// most MaxManifestBlocks blocks, and per block a file name made by FileName and not
// repeated, a size a block file can have, 1..block.MaxRows rows, a table name of
// 1..65535 bytes and MinTime <= MaxTime.
func validateManifest(m *Manifest) error {
	if m.Version != LayoutVersion {
		return fmt.Errorf("version %d, want %d", m.Version, LayoutVersion)
	}
	if m.LeafID == "" || len(m.LeafID) > maxLeafIDLen {
		return fmt.Errorf("leaf id of %d bytes, want 1..%d", len(m.LeafID), maxLeafIDLen)
	}
	if len(m.Blocks) > MaxManifestBlocks {
		return fmt.Errorf("%d blocks, limit %d", len(m.Blocks), MaxManifestBlocks)
	}
	seen := make(map[string]struct{}, len(m.Blocks))
	for i, mb := range m.Blocks {
		if err := validateManifestBlock(mb); err != nil {
			return fmt.Errorf("block %d (%q): %w", i, mb.File, err)
		}
		if _, dup := seen[mb.File]; dup {
			return fmt.Errorf("block %d: file %q listed twice", i, mb.File)
		}
		seen[mb.File] = struct{}{}
	}
	return nil
}

func validateManifestBlock(mb ManifestBlock) error {
	if _, compressed, ok := ParseFileName(mb.File); !ok || compressed {
		return fmt.Errorf("file name is not a block file name like %q", FileName(1))
	}
	if mb.Size < minFileLen || mb.Size > MaxFileSize {
		return fmt.Errorf("size %d out of range %d..%d", mb.Size, minFileLen, int64(MaxFileSize))
	}
	if mb.Rows < 1 || mb.Rows > block.MaxRows {
		return fmt.Errorf("%d rows, want 1..%d", mb.Rows, block.MaxRows)
	}
	if mb.Table == "" || len(mb.Table) > maxNameLen {
		return fmt.Errorf("table name of %d bytes, want 1..%d", len(mb.Table), maxNameLen)
	}
	if mb.MinTime > mb.MaxTime {
		return fmt.Errorf("min time %d after max time %d", mb.MinTime, mb.MaxTime)
	}
	return nil
}

// RemoveManifest removes dir/MANIFEST (a missing one is fine) and fsyncs the
// directory. A process that attached a handoff removes it before it changes the
// directory, so a later crash is not taken for a clean handoff.
func RemoveManifest(dir string) error {
	path := filepath.Join(dir, ManifestName)
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("cannot remove manifest %s: %w", path, err)
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("cannot remove manifest %s: %w", path, err)
	}
	return nil
}

// AttachBlock opens (maps) the block file of manifest entry mb in dir and checks
// that it is the file the manifest describes: size, trailer checksum, rows, table,
// time range and schema hash. Like OpenBlock it does not compute the file checksum;
// VerifyManifestBlock does. A mismatch wraps ErrCorrupt.
func AttachBlock(dir string, mb ManifestBlock) (*block.Block, error) {
	b, _, _, err := attach(unix.AT_FDCWD, dir, mb, false, nil)
	return b, err
}

// AttachBlockDeferred is AttachBlock for a fast start: it maps the file and checks
// what needs no read of a data buffer (header checksum, every buffer's place and
// length, the entry's size, rows, table, time range and schema hash), and leaves
// the rest to verify: the checks OpenBlock makes over validity, offset and index
// buffers, and the file checksum over the whole mapping, against the trailer and
// mb.CRC32C. Opening is then O(header) per block, whatever its size.
//
// The block has no arrays until verify passed (its columns' Arr are nil): it
// carries names, types and stats, enough to prune it and to know its schema. The
// caller must not read it (query it, export it, copy it) before verify returned
// nil; a block whose verify failed must only be released. verify reads only the
// mapping, runs once (later calls, from any goroutine, return its result) and
// returns an error wrapping ErrCorrupt for a damaged file; once it passed, the
// block's arrays are built and ready for concurrent reads, as after OpenBlock.
func AttachBlockDeferred(dir string, mb ManifestBlock) (b *block.Block, verify func() error, err error) {
	return attachDeferred(unix.AT_FDCWD, dir, mb, nil)
}

// Attacher attaches the blocks a manifest lists, as AttachBlockDeferred does,
// holding their directory open so that each file is opened relative to it. It
// may be used from several goroutines at once.
type Attacher struct {
	dir   string
	fd    int
	names *nameCache // the blocks of a leaf share their table and column names
}

// NewAttacher opens dir for attaching its blocks; Close lets go of it.
func NewAttacher(dir string) (*Attacher, error) {
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("cannot open block directory %s: %w", dir, err)
	}
	return &Attacher{dir: dir, fd: fd, names: newNameCache()}, nil
}

// Attach is AttachBlockDeferred of the manifest entry mb in the Attacher's
// directory.
func (a *Attacher) Attach(mb ManifestBlock) (*block.Block, func() error, error) {
	return attachDeferred(a.fd, a.dir, mb, a.names)
}

// Close closes the directory; blocks attached stay mapped.
func (a *Attacher) Close() error { return unix.Close(a.fd) }

func attachDeferred(dirfd int, dir string, mb ManifestBlock, names *nameCache) (b *block.Block, verify func() error, err error) {
	scr := getScratch(names)
	b, data, _, err := attach(dirfd, dir, mb, true, scr)
	putScratch(scr)
	if err != nil {
		return nil, nil, err
	}
	var once sync.Once
	var verr error
	verify = func() error {
		once.Do(func() {
			if err := verifyAttached(b, data, mb); err != nil {
				verr = fmt.Errorf("cannot verify block file %s: %w", filepath.Join(dir, mb.File), err)
			}
		})
		return verr
	}
	return b, verify, nil
}

// verifyAttached makes the checks AttachBlockDeferred left for later: the file
// checksum, against mb's, and the checks of a full open, which decodes the header
// again (a start keeps nothing of it but the block) and builds the arrays; they
// become the block's.
func verifyAttached(b *block.Block, data []byte, mb ManifestBlock) error {
	crc, err := verifyData(data)
	if err != nil {
		return err
	}
	if crc != mb.CRC32C {
		return fmt.Errorf("%w: checksum %08x, manifest says %08x", ErrCorrupt, crc, mb.CRC32C)
	}
	full, _, err := decode(data, false)
	if err != nil {
		return err
	}
	if len(full.Columns) != len(b.Columns) {
		return fmt.Errorf("%w: %d columns, %d when the block was attached", ErrCorrupt, len(full.Columns), len(b.Columns))
	}
	for i := range full.Columns {
		if c, f := &b.Columns[i], &full.Columns[i]; c.Name != f.Name || c.Type != f.Type {
			return fmt.Errorf("%w: column %d is %q (%v), %q (%v) when the block was attached", ErrCorrupt, i, f.Name, f.Type, c.Name, c.Type)
		}
	}
	for i := range full.Columns {
		b.Columns[i].Arr = full.Columns[i].Arr
	}
	return nil
}

// attach opens the block file of mb in dir, which is open as dirfd (or
// unix.AT_FDCWD), and checks it against mb. With layoutOnly, scr is the decoding
// scratch (see openBlockMode).
func attach(dirfd int, dir string, mb ManifestBlock, layoutOnly bool, scr *decodeScratch) (*block.Block, []byte, []*node, error) {
	if err := validateManifestBlock(mb); err != nil {
		return nil, nil, nil, fmt.Errorf("cannot attach block %q: %w: %w", mb.File, ErrCorrupt, err)
	}
	// mb.File is a plain file name (validateManifestBlock).
	b, data, nodes, crc, err := openBlockMode(dirfd, dir, mb.File, layoutOnly, scr)
	if err != nil {
		return nil, nil, nil, err
	}
	if layoutOnly {
		crc = mb.CRC32C // the trailer is checked by verify, with the whole file
	}
	var what string
	switch {
	case int64(len(data)) != mb.Size:
		what = fmt.Sprintf("size %d, manifest says %d", len(data), mb.Size)
	case crc != mb.CRC32C:
		what = fmt.Sprintf("checksum %08x, manifest says %08x", crc, mb.CRC32C)
	case b.Rows != mb.Rows || b.Table != mb.Table || b.MinTime != mb.MinTime || b.MaxTime != mb.MaxTime:
		what = fmt.Sprintf("table %q, %d rows, time [%d,%d]; manifest says %q, %d rows, [%d,%d]",
			b.Table, b.Rows, b.MinTime, b.MaxTime, mb.Table, mb.Rows, mb.MinTime, mb.MaxTime)
	case SchemaHash(b) != mb.SchemaHash:
		what = fmt.Sprintf("schema hash %016x, manifest says %016x", SchemaHash(b), mb.SchemaHash)
	}
	if what != "" {
		b.Release()
		return nil, nil, nil, fmt.Errorf("cannot attach block file %s: %w: %s", filepath.Join(dir, mb.File), ErrCorrupt, what)
	}
	return b, data, nodes, nil
}

// VerifyManifestBlock checks the whole file of manifest entry mb in dir against its
// own checksum and the manifest's.
func VerifyManifestBlock(dir string, mb ManifestBlock) error {
	if err := validateManifestBlock(mb); err != nil {
		return fmt.Errorf("cannot verify block %q: %w: %w", mb.File, ErrCorrupt, err)
	}
	path := filepath.Join(dir, mb.File)
	crc, err := verifyFile(path)
	if err != nil {
		return err
	}
	if crc != mb.CRC32C {
		return fmt.Errorf("cannot verify block file %s: %w: checksum %08x, manifest says %08x", path, ErrCorrupt, crc, mb.CRC32C)
	}
	return nil
}

// SchemaHash is a 64-bit FNV-1a hash of a block's column names and logical types,
// in column order. Blocks with equal hashes have (almost surely) the same columns;
// physical encodings (narrowing, dictionaries) do not change it.
func SchemaHash(b *block.Block) uint64 {
	// FNV-1a written out: a start hashes every block it attaches, and hash/fnv
	// through io.Writer allocates for each name.
	const offset64, prime64 = 14695981039346656037, 1099511628211
	h := uint64(offset64)
	add := func(c byte) { h = (h ^ uint64(c)) * prime64 }
	for i := range b.Columns {
		c := &b.Columns[i]
		n := uint32(len(c.Name))
		add(byte(n))
		add(byte(n >> 8))
		add(byte(n >> 16))
		add(byte(n >> 24))
		add(uint8(c.Type))
		for j := 0; j < len(c.Name); j++ {
			add(c.Name[j])
		}
	}
	return h
}
