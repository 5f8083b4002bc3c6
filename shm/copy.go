package shm

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/golang/snappy"
	"golang.org/x/sys/unix"
)

// VerifyBlockSum is VerifyBlock, also returning the file checksum (the one a
// manifest entry records).
func VerifyBlockSum(path string) (uint32, error) { return verifyFile(path) }

// CopyCompressed writes the disk copy of the block file at src (normally its shm
// file) to dir/CompressedFileName(id): the same bytes as Writer.WriteCompressed
// would write for the block, without decoding it. The file checksum of src is
// verified on the way, so a damaged file is never copied: the error then wraps
// ErrCorrupt and dir is left as it was. The copy is written like WriteCompressed
// (temporary file, rename; with w.Sync, fsynced file and directory).
//
// The returned FileInfo has Path, ID, Size (the compressed length), CRC32C, Rows,
// Table, MinTime and MaxTime; SchemaHash is left 0, as it needs the columns decoded.
func (w Writer) CopyCompressed(src, dir string) (FileInfo, error) {
	data, err := mapFile(src)
	if err != nil {
		return FileInfo{}, fmt.Errorf("cannot copy block file %s: %w", src, err)
	}
	defer unix.Munmap(data)
	crc, err := verifyData(data)
	if err != nil {
		return FileInfo{}, fmt.Errorf("cannot copy block file %s: %w", src, err)
	}
	fi := FileInfo{
		ID:      binary.LittleEndian.Uint64(data[24:]),
		CRC32C:  crc,
		MinTime: int64(binary.LittleEndian.Uint64(data[32:])),
		MaxTime: int64(binary.LittleEndian.Uint64(data[40:])),
		Rows:    int(binary.LittleEndian.Uint32(data[48:])),
	}
	// The header checksum covers the name; the file checksum just matched, so the
	// length is only bounded against the file here.
	if tlen := int(binary.LittleEndian.Uint32(data[56:])); fixedHeaderLen+tlen <= len(data) {
		fi.Table = string(data[fixedHeaderLen : fixedHeaderLen+tlen])
	}
	name := CompressedFileName(fi.ID)
	fi.Path = filepath.Join(dir, name)
	fail := func(err error) (FileInfo, error) {
		return FileInfo{}, fmt.Errorf("cannot write block file %s: %w", fi.Path, err)
	}
	f, err := os.CreateTemp(dir, tempPrefix+name+"-*")
	if err != nil {
		return fail(err)
	}
	tmp := f.Name()
	committed := false
	defer func() {
		if !committed {
			f.Close()
			os.Remove(tmp)
		}
	}()
	sw := snappy.NewBufferedWriter(f)
	if _, err := sw.Write(data); err != nil {
		return fail(err)
	}
	if err := sw.Close(); err != nil {
		return fail(err)
	}
	if fi.Size, err = f.Seek(0, io.SeekCurrent); err != nil {
		return fail(err)
	}
	if w.Sync {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := f.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(tmp, fi.Path); err != nil {
		return fail(err)
	}
	committed = true
	if w.Sync {
		if err := syncDir(dir); err != nil {
			return fail(err)
		}
	}
	return fi, nil
}
