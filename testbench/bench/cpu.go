package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"syscall"
	"time"
)

// clockTicks is the kernel's USER_HZ, the unit of the CPU times in /proc/PID/stat;
// 100 on every Linux architecture Go supports.
const clockTicks = 100

// processCPU returns the CPU time (user + system) the process pid has used so far,
// from /proc/PID/stat, or false where that cannot be read (not Linux, gone).
func processCPU(pid int) (time.Duration, bool) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, false
	}
	// The command name (field 2) is in parentheses and may hold spaces; the fields
	// after its closing parenthesis start with field 3.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, false
	}
	f := bytes.Fields(data[i+1:])
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(string(f[11]), 10, 64) // field 14
	stime, err2 := strconv.ParseInt(string(f[12]), 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * time.Second / clockTicks, true
}

// selfCPU returns the CPU time this process has used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// ProcessCPU is the CPU time one process used during a measurement.
type ProcessCPU struct {
	ID      string  `json:"id"`
	Seconds float64 `json:"cpu_s"`
}

// cpuMeter measures the CPU time of a set of processes and of this one.
type cpuMeter struct {
	ids   []string
	pids  []int
	start []time.Duration
	self  time.Duration
}

func newCPUMeter(ids []string, pids []int) *cpuMeter {
	m := &cpuMeter{ids: ids, pids: pids, self: selfCPU()}
	for _, p := range pids {
		c, _ := processCPU(p)
		m.start = append(m.start, c)
	}
	return m
}

// read returns the CPU time used since newCPUMeter, per process and for this one
// (as "bench"), leaving out processes whose time cannot be read.
func (m *cpuMeter) read() []ProcessCPU {
	var out []ProcessCPU
	for i, p := range m.pids {
		if c, ok := processCPU(p); ok {
			out = append(out, ProcessCPU{ID: m.ids[i], Seconds: round3((c - m.start[i]).Seconds())})
		}
	}
	return append(out, ProcessCPU{ID: "bench (this process)", Seconds: round3((selfCPU() - m.self).Seconds())})
}

// cpuString writes the CPU times in one line: "leaf-0 1.20 s, leaf-1 1.10 s, …; 3.10 s in all".
func cpuString(cs []ProcessCPU) string {
	var b bytes.Buffer
	total := 0.0
	for i, c := range cs {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s %.2f s", c.ID, c.Seconds)
		total += c.Seconds
	}
	fmt.Fprintf(&b, "; %.2f s in all", total)
	return b.String()
}
