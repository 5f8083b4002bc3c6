package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progressBar draws a one-line progress bar on a terminal, redrawn in place, or
// writes a plain progress line every few seconds to anything else (a log file, a
// pipe), so logs stay readable.
type progressBar struct {
	w     io.Writer
	tty   bool
	every time.Duration

	mu    sync.Mutex
	last  time.Time
	drawn bool // a bar is on the terminal's current line
}

// barWidth is the number of cells of the bar.
const barWidth = 30

func newProgressBar(w io.Writer) *progressBar {
	p := &progressBar{w: w, every: 2 * time.Second}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			p.tty, p.every = true, 200*time.Millisecond
		}
	}
	return p
}

// update shows frac (0…1, or < 0 when the end is not known) and text, at most every
// p.every.
func (p *progressBar) update(frac float64, text string) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < p.every {
		return
	}
	p.last = now
	if !p.tty {
		if frac >= 0 {
			fmt.Fprintf(p.w, "%3.0f%% %s\n", 100*min(frac, 1), text)
		} else {
			fmt.Fprintln(p.w, text)
		}
		return
	}
	bar := ""
	if frac >= 0 {
		n := int(min(frac, 1) * barWidth)
		bar = fmt.Sprintf("[%s%s] %3.0f%% ", strings.Repeat("#", n), strings.Repeat(".", barWidth-n), 100*min(frac, 1))
	}
	fmt.Fprintf(p.w, "\r\033[K%s%s", bar, text)
	p.drawn = true
}

// println ends the bar's line, if one is drawn, and writes a line of text.
func (p *progressBar) println(text string) {
	if p == nil || p.w == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.drawn {
		fmt.Fprint(p.w, "\r\033[K")
		p.drawn = false
	}
	fmt.Fprintln(p.w, text)
}

// humanCount formats a count or rate like 1.2M or 830k.
func humanCount(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}
