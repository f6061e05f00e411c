package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/machtrace/machtrace/darwin"
)

// SetupOptions are the options of `machtrace setup`.
type SetupOptions struct {
	Binary     string // the binary to sign; default: this executable
	DryRun     bool   // print the codesign command only
	PrintPlist bool   // print the entitlements plist and stop

	// GOOS and Run are the platform and the command runner; tests replace them.
	GOOS string
	Run  func(name string, args ...string) (string, error)
}

// NewCmdSetup builds `machtrace setup`.
func NewCmdSetup(f *Factory, runF func(*SetupOptions) error) *cobra.Command {
	o := &SetupOptions{}
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Sign machtrace ad hoc with the debugger entitlement (macOS)",
		Long: `setup re-signs the machtrace binary ad hoc, with the hardened runtime and the
com.apple.security.cs.debugger entitlement, so that it can take the task ports
of your own processes without sudo:

  codesign --force --options runtime --sign - --entitlements ENT.plist BINARY

The first attach per login session may then ask for Developer Tools access
at the screen; 'sudo DevToolsSecurity -enable' avoids the prompt (needed over
SSH). Signing does not unlock Apple system binaries (SIP) or hardened-runtime
apps without get-task-allow: nothing but disabling SIP does. Run setup again
after every rebuild, since building replaces the signature.

On Linux there is nothing to sign; see 'machtrace doctor'.`,
		Example: `  machtrace setup
  machtrace setup --dry-run
  machtrace setup --print-plist > machtrace.entitlements`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(o)
			}
			return setupRun(f, o)
		},
	}
	cmd.Flags().StringVar(&o.Binary, "binary", "", "sign `PATH` instead of this executable")
	cmd.Flags().BoolVar(&o.DryRun, "dry-run", false, "print the codesign command without running it")
	cmd.Flags().BoolVar(&o.PrintPlist, "print-plist", false, "print the entitlements plist and exit")
	return cmd
}

// runCommand runs a system command for setup and returns its combined output.
func runCommand(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

func setupRun(f *Factory, o *SetupOptions) error {
	out := f.IO.Out
	if o.PrintPlist {
		_, err := out.Write(darwin.DebuggerEntitlementsPlist)
		return err
	}
	goos, run := o.GOOS, o.Run
	if goos == "" {
		goos = runtime.GOOS
	}
	if run == nil {
		run = runCommand
	}
	if goos != "darwin" {
		fmt.Fprintf(out, "setup signs machtrace for macOS; on %s there is nothing to sign.\n", goos)
		fmt.Fprintln(out, "Run `machtrace doctor` to see what this machine lets machtrace trace.")
		return nil
	}
	bin := o.Binary
	if bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("setup: find this executable: %w (pass --binary PATH)", err)
		}
		bin = exe
	}
	if resolved, err := filepath.EvalSymlinks(bin); err == nil {
		bin = resolved
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	dir, err := os.MkdirTemp("", "machtrace-setup")
	if err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	defer os.RemoveAll(dir)
	plist := filepath.Join(dir, "machtrace.entitlements")
	if err := os.WriteFile(plist, darwin.DebuggerEntitlementsPlist, 0o644); err != nil {
		return fmt.Errorf("setup: %w", err)
	}
	args := []string{"--force", "--options", "runtime", "--sign", "-", "--entitlements", plist, bin}
	fmt.Fprintf(out, "codesign %s\n", strings.Join(args, " "))
	if o.DryRun {
		return nil
	}
	if msg, err := run("codesign", args...); err != nil {
		hint := ""
		if errors.Is(err, exec.ErrNotFound) {
			hint = " (codesign comes with the Xcode command line tools: xcode-select --install)"
		} else if strings.Contains(msg, "Permission denied") || strings.Contains(msg, "Operation not permitted") {
			hint = " (the binary is not writable by you: copy it somewhere you own, or use sudo)"
		}
		return fmt.Errorf("setup: codesign %s: %w: %s%s", bin, err, msg, hint)
	}
	// Read the signature back: the entitlement must be there.
	ents, err := run("codesign", "-d", "--entitlements", "-", "--xml", bin)
	if err != nil {
		return fmt.Errorf("setup: verify the signature of %s: %w: %s", bin, err, ents)
	}
	if !darwin.HasEntitlement([]byte(ents), darwin.DebuggerEntitlement) {
		return fmt.Errorf("setup: %s was signed, but %s is not in its entitlements", bin, darwin.DebuggerEntitlement)
	}
	fmt.Fprintf(out, "signed %s with %s.\n", bin, darwin.DebuggerEntitlement)
	fmt.Fprintln(out, "next: approve the Developer Tools prompt on first use, or run `sudo DevToolsSecurity -enable` once (required over SSH);")
	fmt.Fprintln(out, "      then `machtrace doctor -p PID` says whether a given process can be traced. Re-run setup after every rebuild.")
	return nil
}
