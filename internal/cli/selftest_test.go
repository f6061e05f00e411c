package cli

import (
	"os"
	"runtime"
	"strings"
	"testing"
)

const selftestTraceeEnv = "MACHTRACE_SELFTEST_TRACEE"

// TestSelftestTraceeHelper is the selftest's target when the test binary
// re-executes itself with selftestTraceeEnv set; otherwise it does nothing.
func TestSelftestTraceeHelper(t *testing.T) {
	if os.Getenv(selftestTraceeEnv) != "1" {
		t.Skip("helper process only")
	}
	selftestTracee()
}

// TestSelftest runs `machtrace selftest` against this test binary: on Linux
// it exercises the ptrace backend, on macOS the Mach backend.
func TestSelftest(t *testing.T) {
	if runtime.GOOS != "linux" && runtime.GOOS != "darwin" {
		t.Skip("no local backend on " + runtime.GOOS)
	}
	if testing.Short() {
		t.Skip("starts processes")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	f, out, _ := testFactory()
	o := &SelftestOptions{
		TraceeArgv: []string{exe, "-test.run=^TestSelftestTraceeHelper$"},
		TraceeEnv:  append(os.Environ(), selftestTraceeEnv+"=1"),
	}
	err = selftestRun(f, o)
	t.Logf("selftest output:\n%s", out)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"ok    launch suspended", "ok    attach by pid", "0 failed"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("output lacks %q", w)
		}
	}
}

func TestSelftestFlags(t *testing.T) {
	f, _, _ := testFactory()
	var got *SelftestOptions
	cmd := NewCmdSelftest(f, func(o *SelftestOptions) error { got = o; return nil })
	cmd.SetArgs([]string{"--tracee"})
	if err := cmd.Execute(); err != nil || !got.Tracee {
		t.Errorf("--tracee: %v %+v", err, got)
	}
}
