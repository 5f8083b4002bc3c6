package testbench

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// A leaf of a local cluster may be restarted by another program than the harness:
// scripts/rolling-deploy.sh hands a leaf off, starts the new binary itself and
// records the new pid in cluster.json (UpdateClusterFileProcess). The harness then
// adopts the new process (Adopt, and Close before it stops anything), so that
// stopping the cluster stops it too.

// adoptPoll is how often the harness looks whether an adopted process still runs
// (it is not the harness's child, so it cannot wait for it).
const adoptPoll = 20 * time.Millisecond

// UpdateClusterFileProcess sets the pid of process id in the cluster file at path
// and, when binary is not empty, the program of its command line (Argv[0]), then
// writes the file back by rename. It is what a deploy tool calls after it started
// a process of a local cluster again.
func UpdateClusterFileProcess(path, id string, pid int, binary string) error {
	f, err := ReadClusterFile(path)
	if err != nil {
		return err
	}
	if pid <= 0 {
		return fmt.Errorf("cannot update cluster file %s: pid %d is not a process id", path, pid)
	}
	i := slices.IndexFunc(f.Processes, func(p ProcessInfo) bool { return p.ID == id })
	if i < 0 {
		return fmt.Errorf("cannot update cluster file %s: no process %q in it", path, id)
	}
	p := &f.Processes[i]
	p.PID = pid
	if binary != "" {
		abs, err := filepath.Abs(binary)
		if err != nil {
			return fmt.Errorf("cannot update cluster file %s: %w", path, err)
		}
		p.Argv[0] = abs
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode %s: %w", ClusterFileName, err)
	}
	return writeFileAtomic(path, append(data, '\n'))
}

// Adopt reads the cluster's cluster.json and takes over every leaf that another
// program restarted: one whose recorded pid is not the harness's process, which has
// exited, and whose recorded process runs the leaf's command line. From then on the
// harness follows that process by pid; Leaves reports it and Close stops it. It
// returns how many leaves it adopted.
func (c *Cluster) Adopt() (int, error) {
	c.opMu.Lock()
	defer c.opMu.Unlock()
	return c.adopt()
}

// adopt is Adopt with c.opMu held.
func (c *Cluster) adopt() (int, error) {
	f, err := ReadClusterFile(filepath.Join(c.cfg.Dir, ClusterFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil // not written yet: nothing was restarted
	}
	if err != nil {
		return 0, err
	}
	n := 0
	var errs []error
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, rec := range f.Processes {
		if rec.Role != RoleLeaf {
			continue
		}
		i := slices.IndexFunc(c.leaves, func(p *process) bool { return p != nil && p.info.ID == rec.ID })
		if i < 0 {
			continue
		}
		cur := c.leaves[i]
		if rec.PID == cur.info.PID || rec.PID <= 0 {
			continue
		}
		if !cur.exited() {
			errs = append(errs, fmt.Errorf("cluster file says %s is pid %d, but the harness's pid %d still runs", rec.ID, rec.PID, cur.info.PID))
			continue
		}
		if !processRuns(rec.PID, rec.Argv) {
			errs = append(errs, fmt.Errorf("cluster file says %s is pid %d, which does not run its command line", rec.ID, rec.PID))
			continue
		}
		info := cur.info.clone()
		info.PID = rec.PID
		info.Argv = slices.Clone(rec.Argv)
		var off int64
		if st, err := os.Stat(info.Log); err == nil {
			off = st.Size()
		}
		p := &process{info: info, done: make(chan struct{}), logOffset: off}
		go watchAdopted(p)
		c.leaves[i] = p
		n++
	}
	return n, errors.Join(errs...)
}

// watchAdopted closes p.done once the adopted process p is gone.
func watchAdopted(p *process) {
	t := time.NewTicker(adoptPoll)
	defer t.Stop()
	for range t.C {
		if !processRuns(p.info.PID, nil) {
			close(p.done)
			return
		}
	}
}

func (c *Cluster) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}
