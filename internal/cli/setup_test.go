package cli

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/machtrace/machtrace/darwin"
)

func TestSetupSignsWithTheEntitlement(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "machtrace")
	os.WriteFile(bin, []byte("binary"), 0o755)
	var calls [][]string
	var plistSeen []byte
	o := &SetupOptions{Binary: bin, GOOS: "darwin", Run: func(name string, args ...string) (string, error) {
		calls = append(calls, append([]string{name}, args...))
		if i := slices.Index(args, "--entitlements"); i >= 0 && args[i+1] != "-" {
			plistSeen, _ = os.ReadFile(args[i+1])
			return "", nil
		}
		return string(darwin.DebuggerEntitlementsPlist), nil // codesign -d --entitlements -
	}}
	f, out, _ := testFactory()
	if err := setupRun(f, o); err != nil {
		t.Fatal(err)
	}
	if len(calls) != 2 {
		t.Fatalf("calls %v", calls)
	}
	sign := strings.Join(calls[0], " ")
	for _, w := range []string{"codesign --force --options runtime --sign - --entitlements ", bin} {
		if !strings.Contains(sign, w) {
			t.Errorf("sign command %q lacks %q", sign, w)
		}
	}
	if !darwin.HasEntitlement(plistSeen, darwin.DebuggerEntitlement) {
		t.Errorf("codesign was given a plist without the entitlement: %s", plistSeen)
	}
	if !strings.Contains(out.String(), "DevToolsSecurity -enable") {
		t.Errorf("output lacks the next step:\n%s", out)
	}
}

func TestSetupFailures(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "machtrace")
	os.WriteFile(bin, []byte("binary"), 0o755)
	f, _, _ := testFactory()
	denied := &SetupOptions{Binary: bin, GOOS: "darwin", Run: func(string, ...string) (string, error) {
		return "machtrace: Permission denied", errors.New("exit status 1")
	}}
	if err := setupRun(f, denied); err == nil || !strings.Contains(err.Error(), "not writable") {
		t.Errorf("permission error: %v", err)
	}
	unsigned := &SetupOptions{Binary: bin, GOOS: "darwin", Run: func(name string, args ...string) (string, error) {
		return "", nil // signed, but the entitlements read back empty
	}}
	if err := setupRun(f, unsigned); err == nil || !strings.Contains(err.Error(), "not in its entitlements") {
		t.Errorf("verification: %v", err)
	}
	if err := setupRun(f, &SetupOptions{Binary: bin + ".missing", GOOS: "darwin"}); err == nil {
		t.Error("missing binary accepted")
	}
}

func TestSetupElsewhereAndPlist(t *testing.T) {
	f, out, _ := testFactory()
	ran := false
	if err := setupRun(f, &SetupOptions{GOOS: "linux", Run: func(string, ...string) (string, error) { ran = true; return "", nil }}); err != nil || ran {
		t.Errorf("linux: err %v, ran codesign %v", err, ran)
	}
	if !strings.Contains(out.String(), "nothing to sign") {
		t.Errorf("linux output:\n%s", out)
	}
	f, out, _ = testFactory()
	cmd := NewCmdSetup(f, nil)
	cmd.SetArgs([]string{"--print-plist"})
	if err := cmd.Execute(); err != nil || !strings.Contains(out.String(), "com.apple.security.cs.debugger") {
		t.Errorf("--print-plist: %v\n%s", err, out)
	}
	f, out, _ = testFactory()
	if err := setupRun(f, &SetupOptions{Binary: "/bin/sh", GOOS: "darwin", DryRun: true}); err != nil || !strings.HasPrefix(out.String(), "codesign --force") {
		t.Errorf("--dry-run: %v\n%s", err, out)
	}
}
