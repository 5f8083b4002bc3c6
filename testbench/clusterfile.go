package testbench

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
)

// ClusterFileName is the name of the cluster description in a cluster's Dir.
const ClusterFileName = "cluster.json"

// ClusterFileVersion is the version of the cluster.json layout written by this package.
const ClusterFileVersion = 1

// maxClusterFileBytes bounds what ReadClusterFile reads.
const maxClusterFileBytes = 16 << 20

// ProcessInfo describes one process of a local cluster.
type ProcessInfo struct {
	Role    string   `json:"role"` // RoleLeaf or RoleAggregator
	ID      string   `json:"id"`   // leaf-0, leaf-1, …; agg-0 for the root aggregator
	URL     string   `json:"url"`  // http://127.0.0.1:PORT
	Port    int      `json:"port"`
	PID     int      `json:"pid"`                // of the latest start
	Argv    []string `json:"argv"`               // the exact command line, Argv[0] the binary
	DataDir string   `json:"data_dir,omitempty"` // leaves only
	ShmDir  string   `json:"shm_dir,omitempty"`  // leaves only
	Log     string   `json:"log"`                // where its stdout and stderr go
}

func (p ProcessInfo) clone() ProcessInfo {
	p.Argv = slices.Clone(p.Argv)
	return p
}

// ClusterFile is the content of Dir/cluster.json, written by StartCluster and again
// after every RestartLeaf (by rename, so a reader never sees half a file). Tools such
// as scripts/rolling-deploy.sh read it to find and restart the processes, e.g.
//
//	jq -r '.processes[] | select(.role=="leaf") | .id' DIR/cluster.json
//
// Example:
//
//	{
//	  "version": 1,
//	  "dir": "/tmp/reef-local-123",
//	  "binary": "/usr/local/bin/reef",
//	  "aggregator_url": "http://127.0.0.1:7070",
//	  "processes": [
//	    {"role": "leaf", "id": "leaf-0", "url": "http://127.0.0.1:7071", "port": 7071, "pid": 4242,
//	     "argv": ["/usr/local/bin/reef", "leaf", "--id", "leaf-0", "--listen", "127.0.0.1:7071",
//	              "--data", "/tmp/reef-local-123/leaf-0", "--shm-dir", "/tmp/reef-local-123/shm/leaf-0"],
//	     "data_dir": "/tmp/reef-local-123/leaf-0", "shm_dir": "/tmp/reef-local-123/shm/leaf-0",
//	     "log": "/tmp/reef-local-123/logs/leaf-0.log"},
//	    …,
//	    {"role": "aggregator", "id": "agg-0", "url": "http://127.0.0.1:7070", …}
//	  ]
//	}
//
// Processes lists the leaves in order, then the aggregators.
type ClusterFile struct {
	Version       int           `json:"version"`
	Dir           string        `json:"dir"`
	Binary        string        `json:"binary"`
	AggregatorURL string        `json:"aggregator_url"`
	Processes     []ProcessInfo `json:"processes"`
}

// writeClusterFile writes Dir/cluster.json from the cluster's current state.
func (c *Cluster) writeClusterFile() error {
	c.mu.Lock()
	f := ClusterFile{
		Version:   ClusterFileVersion,
		Dir:       c.cfg.Dir,
		Binary:    c.cfg.Binary,
		Processes: c.processesLocked(),
	}
	if len(c.aggs) > 0 && c.aggs[0] != nil {
		f.AggregatorURL = c.aggs[0].info.URL
	}
	c.mu.Unlock()
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("cannot encode %s: %w", ClusterFileName, err)
	}
	return writeFileAtomic(filepath.Join(c.cfg.Dir, ClusterFileName), append(data, '\n'))
}

// ReadClusterFile reads and checks a cluster.json.
func ReadClusterFile(path string) (*ClusterFile, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read cluster file: %w", err)
	}
	if st.Size() > maxClusterFileBytes {
		return nil, fmt.Errorf("cannot read cluster file %s: %d bytes, more than the %d allowed", path, st.Size(), maxClusterFileBytes)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read cluster file: %w", err)
	}
	f, err := ParseClusterFile(data)
	if err != nil {
		return nil, fmt.Errorf("cannot read cluster file %s: %w", path, err)
	}
	return f, nil
}

// ParseClusterFile decodes and checks the content of a cluster.json: a known version,
// and for every process a role, an id, a port and a command line.
func ParseClusterFile(data []byte) (*ClusterFile, error) {
	var f ClusterFile
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("cannot decode cluster file: %w", err)
	}
	if f.Version != ClusterFileVersion {
		return nil, fmt.Errorf("cluster file has version %d, want %d", f.Version, ClusterFileVersion)
	}
	ids := make(map[string]bool, len(f.Processes))
	for i, p := range f.Processes {
		var problem string
		switch {
		case p.Role != RoleLeaf && p.Role != RoleAggregator:
			problem = fmt.Sprintf("unknown role %q", p.Role)
		case p.ID == "":
			problem = "no id"
		case ids[p.ID]:
			problem = fmt.Sprintf("id %q used twice", p.ID)
		case p.Port <= 0 || p.Port > 65535:
			problem = fmt.Sprintf("port %d out of range", p.Port)
		case len(p.Argv) == 0:
			problem = "no command line"
		}
		if problem != "" {
			return nil, fmt.Errorf("cluster file process %d: %s", i, problem)
		}
		ids[p.ID] = true
	}
	return &f, nil
}

// writeFileAtomic writes data to path through a temporary file and a rename.
func writeFileAtomic(path string, data []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("cannot write %s: %w", path, err)
	}
	_, err = tmp.Write(data)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		return errors.Join(fmt.Errorf("cannot write %s: %w", path, err), os.Remove(tmp.Name()))
	}
	return nil
}
