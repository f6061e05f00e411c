package kdptest

import (
	"bufio"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// TranscriptEnv names an environment variable that, when set, overrides the
// location of the LLDB transcript directory.
const TranscriptEnv = "MACHTRACE_KDP_TRANSCRIPTS"

// transcriptRel is where the transcripts live relative to an ancestor of the
// working directory (the module sits next to shared/ in the workspace).
var transcriptRel = filepath.Join("shared", "testdata", "kdp-lldb")

// Datagram is one line of a transcript.
type Datagram struct {
	FromLLDB bool    // "L>S": sent by LLDB's client; otherwise "S>L", sent by the stub
	Time     float64 // seconds since the capture started
	Name     string  // the capture tool's name for the packet ("READMEM64", "reply_READMEM64")
	Bytes    []byte  // the UDP payload
	Line     int     // 1-based line number in the file
}

// Transcript is one captured LLDB session.
type Transcript struct {
	Name      string // file name, e.g. "lldb-session5.hex.txt"
	Datagrams []Datagram
}

// FromLLDB returns the datagrams LLDB sent, in order.
func (t *Transcript) FromLLDB() []Datagram {
	var out []Datagram
	for _, d := range t.Datagrams {
		if d.FromLLDB {
			out = append(out, d)
		}
	}
	return out
}

// ErrNoTranscripts means the transcript directory could not be found.
var ErrNoTranscripts = errors.New("kdptest: LLDB transcript directory shared/testdata/kdp-lldb not found")

// TranscriptDir locates the transcript directory: $MACHTRACE_KDP_TRANSCRIPTS
// if set, else shared/testdata/kdp-lldb under the working directory or any of
// its ancestors.
func TranscriptDir() (string, error) {
	if d := os.Getenv(TranscriptEnv); d != "" {
		if st, err := os.Stat(d); err != nil || !st.IsDir() {
			return "", fmt.Errorf("%w (%s=%s is not a directory)", ErrNoTranscripts, TranscriptEnv, d)
		}
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		cand := filepath.Join(dir, transcriptRel)
		if st, err := os.Stat(cand); err == nil && st.IsDir() {
			return cand, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("%w (searched upwards from the working directory; set %s to override)", ErrNoTranscripts, TranscriptEnv)
		}
		dir = parent
	}
}

// ReadTranscripts parses every *.hex.txt file in dir, sorted by name.
func ReadTranscripts(dir string) ([]Transcript, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.hex.txt"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []Transcript
	for _, f := range files {
		t, err := readTranscript(f)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no *.hex.txt files in %s", ErrNoTranscripts, dir)
	}
	return out, nil
}

func readTranscript(path string) (Transcript, error) {
	f, err := os.Open(path)
	if err != nil {
		return Transcript{}, err
	}
	defer f.Close()
	t := Transcript{Name: filepath.Base(path)}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		fields := strings.Fields(line)
		if len(fields) != 4 {
			return t, fmt.Errorf("%s:%d: want DIR TIME NAME HEX, got %d fields", path, n, len(fields))
		}
		var d Datagram
		switch fields[0] {
		case "L>S":
			d.FromLLDB = true
		case "S>L":
		default:
			return t, fmt.Errorf("%s:%d: direction %q is neither L>S nor S>L", path, n, fields[0])
		}
		if d.Time, err = strconv.ParseFloat(strings.TrimSuffix(fields[1], "s"), 64); err != nil {
			return t, fmt.Errorf("%s:%d: time: %w", path, n, err)
		}
		d.Name = fields[2]
		if d.Bytes, err = hex.DecodeString(fields[3]); err != nil {
			return t, fmt.Errorf("%s:%d: hex: %w", path, n, err)
		}
		d.Line = n
		t.Datagrams = append(t.Datagrams, d)
	}
	return t, sc.Err()
}

// Transcripts returns the LLDB transcripts, or skips the test with a clear
// message when the directory is absent. A directory that exists but cannot be
// parsed fails the test.
func Transcripts(tb testing.TB) []Transcript {
	tb.Helper()
	dir, err := TranscriptDir()
	if err != nil {
		tb.Skipf("skipping: %v", err)
	}
	ts, err := ReadTranscripts(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return ts
}
