//go:build unix

package leaf

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// lockFileName is the lock file a leaf holds in its shm and data directories.
const lockFileName = "LOCK"

// lockDir takes an exclusive flock on dir/LOCK, so that two processes never use
// one leaf's directories at once. The kernel lets go of it when the process ends,
// however it ends. A lock held by another process (the previous process of a
// restart, still exiting) is waited for, up to wait. The returned function lets go.
func lockDir(dir string, wait time.Duration, log *slog.Logger) (func(), error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("cannot lock %s: %w", dir, err)
	}
	deadline := time.Now().Add(wait)
	logged := false
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("cannot lock %s: %w", dir, err)
		}
		if time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("cannot lock %s: another process still holds it after %v (is another leaf using this directory?)", dir, wait)
		}
		if !logged {
			log.Info("waiting for the previous process to let go of the directory", "dir", dir)
			logged = true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return func() {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		f.Close()
	}, nil
}
