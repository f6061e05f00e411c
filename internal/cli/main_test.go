package cli

import (
	"os"
	"testing"

	"github.com/machtrace/machtrace/internal/testutil/tracee"
	"github.com/machtrace/machtrace/internal/testvm"
)

// envRunCLI makes the test binary run machtrace's main instead of the tests,
// so a test can drive the real command in a child process (signals, exit
// codes).
const envRunCLI = "MACHTRACE_TEST_RUN_CLI"

func TestMain(m *testing.M) {
	tracee.RunIfRequested()
	if os.Getenv(envRunCLI) != "" {
		os.Args = append([]string{"machtrace"}, os.Args[1:]...)
		os.Exit(int(Main()))
	}
	code := m.Run()
	testvm.StopShared()
	os.Exit(code)
}
