package wal

import (
	"fmt"
	"os"
	"path/filepath"
)

// A log closed cleanly leaves a small file, CLEAN, saying where it ended:
//
//	REEF-WAL-CLEAN next=<seq> segment=<file name> size=<bytes>\n
//
// If at the next Open the last segment is still that file with that size, the log
// was not written since: Open takes the end from the mark instead of reading the
// whole segment, and appends to it. The first append changes the size, so after a
// crash the mark no longer matches and the segment is read and checked in full.
const cleanName = "CLEAN"

type cleanMark struct {
	next    uint64
	segment string
	size    int64
}

func writeCleanMark(dir string, m cleanMark) error {
	path := filepath.Join(dir, cleanName)
	tmp := path + ".tmp"
	data := fmt.Sprintf("REEF-WAL-CLEAN next=%d segment=%s size=%d\n", m.next, m.segment, m.size)
	if err := os.WriteFile(tmp, []byte(data), 0o644); err != nil {
		return fmt.Errorf("cannot mark the WAL clean: %w", err)
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("cannot mark the WAL clean: %w", err)
	}
	return nil
}

// readCleanMark reads dir/CLEAN. A missing or unreadable one is the zero mark,
// which matches no segment.
func readCleanMark(dir string) cleanMark {
	data, err := os.ReadFile(filepath.Join(dir, cleanName))
	var m cleanMark
	if err != nil || len(data) >= 512 {
		return m
	}
	if _, err := fmt.Sscanf(string(data), "REEF-WAL-CLEAN next=%d segment=%s size=%d\n", &m.next, &m.segment, &m.size); err != nil {
		return cleanMark{}
	}
	return m
}

// matches reports whether the mark describes segment s as it is now, and returns
// the sequence number after its last record.
func (m cleanMark) matches(s segment) (uint64, bool) {
	if m.next == 0 || m.segment != filepath.Base(s.path) || m.next < s.first {
		return 0, false
	}
	st, err := os.Stat(s.path)
	if err != nil || st.Size() != m.size {
		return 0, false
	}
	if m.next == s.first {
		return s.first, true
	}
	return m.next, true
}
