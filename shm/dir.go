package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Dir is a directory of block files: a leaf's shm directory or its disk-copy
// directory. It only names, lists and removes files; reading and writing go through
// the package functions with Dir.Path.
type Dir struct{ path string }

// OpenDir creates the directory path (mode 0700, with parents) if it is missing and
// removes the temporary files an interrupted write left in it. Call it before any
// write into the directory starts: a write in flight has a temporary file too.
func OpenDir(path string) (*Dir, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("cannot open block directory: %w", err)
	}
	d := &Dir{path: path}
	if _, err := d.RemoveTemp(); err != nil {
		return nil, err
	}
	return d, nil
}

// Path is the directory's path.
func (d *Dir) Path() string { return d.path }

// BlockPath is the path of the shm file of block id.
func (d *Dir) BlockPath(id uint64) string { return filepath.Join(d.path, FileName(id)) }

// CompressedPath is the path of the disk copy of block id.
func (d *Dir) CompressedPath(id uint64) string {
	return filepath.Join(d.path, CompressedFileName(id))
}

// Blocks returns the ids of the shm block files (FileName) in the directory, in
// increasing order.
func (d *Dir) Blocks() ([]uint64, error) { return d.list(false) }

// CompressedBlocks returns the ids of the disk copies (CompressedFileName) in the
// directory, in increasing order.
func (d *Dir) CompressedBlocks() ([]uint64, error) { return d.list(true) }

func (d *Dir) list(compressed bool) ([]uint64, error) {
	ents, err := os.ReadDir(d.path)
	if err != nil {
		return nil, fmt.Errorf("cannot list block directory: %w", err)
	}
	var ids []uint64
	for _, e := range ents {
		id, c, ok := ParseFileName(e.Name())
		if ok && c == compressed && e.Type().IsRegular() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Remove removes the shm file and the disk copy of block id from the directory;
// files that do not exist are no error.
func (d *Dir) Remove(id uint64) error {
	for _, p := range []string{d.BlockPath(id), d.CompressedPath(id)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("cannot remove block %d: %w", id, err)
		}
	}
	return nil
}

// RemoveTemp removes the temporary files of interrupted writes and returns how many
// it removed.
func (d *Dir) RemoveTemp() (int, error) {
	ents, err := os.ReadDir(d.path)
	if err != nil {
		return 0, fmt.Errorf("cannot list block directory: %w", err)
	}
	n := 0
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tempPrefix) || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(d.path, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return n, fmt.Errorf("cannot remove temporary file: %w", err)
		}
		n++
	}
	return n, nil
}
