package shell

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The interactive test runs the shell as a child process (this test binary, told so
// by ptyChildEnv) on a pseudo-terminal, and types at it.
const ptyChildEnv = "REEF_SHELL_TEST_PTY_ARGS"

// ptyChild runs `reef shell` with the arguments in ptyChildEnv and exits, when this
// process is such a child; otherwise it returns false.
func ptyChild() bool {
	v := os.Getenv(ptyChildEnv)
	if v == "" {
		return false
	}
	var args []string
	if err := json.Unmarshal([]byte(v), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	os.Exit(Main(context.Background(), args))
	return true
}

// openPTY opens a pseudo-terminal pair of rows × cols.
func openPTY(rows, cols uint16) (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, nil, err
	}
	fd := int(m.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("unlockpt: %w", err)
	}
	n, err := unix.IoctlGetUint32(fd, unix.TIOCGPTN)
	if err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("ptsname: %w", err)
	}
	if err := unix.IoctlSetWinsize(fd, unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols}); err != nil {
		m.Close()
		return nil, nil, fmt.Errorf("set window size: %w", err)
	}
	s, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	return m, s, nil
}

// terminal collects what the child writes to its terminal.
type terminal struct {
	master *os.File
	mu     sync.Mutex
	out    bytes.Buffer
	seen   int // bytes of out already matched by expect
	done   chan struct{}
}

func (tm *terminal) read() {
	defer close(tm.done)
	buf := make([]byte, 4096)
	for {
		n, err := tm.master.Read(buf)
		tm.mu.Lock()
		tm.out.Write(buf[:n])
		tm.mu.Unlock()
		if err != nil {
			return // EIO once the child and every copy of the slave are gone
		}
	}
}

// expect waits until the output after the last match holds want.
func (tm *terminal) expect(t *testing.T, want string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		tm.mu.Lock()
		rest := tm.out.String()[tm.seen:]
		if i := strings.Index(rest, want); i >= 0 {
			tm.seen += i + len(want)
			tm.mu.Unlock()
			return
		}
		tm.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("terminal never showed %q; it shows:\n%q", want, rest)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (tm *terminal) typ(t *testing.T, keys string) {
	t.Helper()
	if _, err := tm.master.Write([]byte(keys)); err != nil {
		t.Fatalf("type %q: %v", keys, err)
	}
}

func TestInteractiveOnPTY(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a child process")
	}
	f := newFakeAggregator(t)
	master, slave, err := openPTY(12, 120)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer master.Close()

	dir := t.TempDir()
	history := filepath.Join(dir, "history")
	args, _ := json.Marshal([]string{"--addr", f.srv.URL, "--history", history})
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), ptyChildEnv+"="+string(args), "TERM=xterm", "NO_COLOR=", "PAGER=sed s/^/PAGED:/")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0}
	if err := cmd.Start(); err != nil {
		slave.Close()
		t.Fatalf("start shell: %v", err)
	}
	slave.Close()
	tm := &terminal{master: master, done: make(chan struct{})}
	go tm.read()
	exited := make(chan struct{})
	var exitErr error
	go func() {
		exitErr = cmd.Wait()
		close(exited)
	}()
	defer func() {
		select {
		case <-exited:
		default:
			cmd.Process.Kill()
			<-exited
		}
		<-tm.done
	}()

	tm.expect(t, "reef> ")

	// A query over two lines.
	tm.typ(t, "SELECT host, count(*)\r")
	tm.expect(t, promptMore)
	tm.typ(t, "FROM events GROUP BY host;\r")
	tm.expect(t, "web-1         | 1,234,567")
	tm.expect(t, "3 rows · coverage 100% (8/8 leaves, 41.2M rows)")

	// Tab completes the table name of \d.
	tm.expect(t, "reef> ")
	tm.typ(t, `\d eve`+"\t")
	tm.expect(t, "events")
	tm.typ(t, "\r")
	tm.expect(t, "Table events · 1,234,567 rows")

	// Ctrl-C during a query cancels it, and the shell stays.
	tm.expect(t, "reef> ")
	tm.typ(t, "SELECT count(*) FROM slow;\r")
	select {
	case <-f.slowStarted:
	case <-time.After(20 * time.Second):
		t.Fatal("the slow query never reached the server")
	}
	tm.typ(t, "\x03")
	tm.expect(t, "query canceled")
	select {
	case <-f.slowAborted:
	case <-time.After(20 * time.Second):
		t.Fatal("the server never saw the query cancelled")
	}

	// Ctrl-C at the prompt drops the line typed so far.
	tm.expect(t, "reef> ")
	tm.typ(t, "SELECT nothing\x03")
	tm.expect(t, "^C")
	tm.expect(t, "reef> ")

	// Output longer than the terminal (12 rows) goes through the pager.
	tm.typ(t, `\help`+"\r")
	tm.expect(t, `PAGED:  \tables`)
	tm.typ(t, "SELECT time(1m), count(*) FROM events GROUP BY time(1m);\r")
	tm.expect(t, "▁▂▄█")

	tm.typ(t, `\q`+"\r")
	select {
	case <-exited:
		if exitErr != nil {
			tm.mu.Lock()
			defer tm.mu.Unlock()
			t.Fatalf("shell exited with %v; terminal:\n%s", exitErr, tm.out.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("shell did not exit on \\q")
	}
	b, err := os.ReadFile(history)
	if err != nil {
		t.Fatalf("history not saved: %v", err)
	}
	want := "SELECT host, count(*) FROM events GROUP BY host;\n\\d events\nSELECT count(*) FROM slow;\n"
	if !strings.HasPrefix(string(b), want) {
		t.Errorf("history:\n%s\nwant prefix:\n%s", b, want)
	}
	if n := f.sqlCount(); n != 3 {
		t.Errorf("%d queries reached the server, want 3", n)
	}
}
