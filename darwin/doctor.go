package darwin

import (
	"errors"
	"fmt"

	"github.com/machtrace/machtrace/mach"
)

// Rule names the macOS rule that decided an attach (docs/mach-api.md 1.1-1.2).
type Rule int

// The rules the permission doctor tells apart.
const (
	RuleNone            Rule = iota // no problem found
	RuleNoProcess                   // the pid does not exist
	RuleExiting                     // the process has no task any more
	RuleTransient                   // taskgated died or the call was interrupted: retry
	RuleDeveloperMode               // Developer Mode is off (KERN_INVALID_SECURITY)
	RulePlatformBinary              // an Apple platform binary, protected by SIP
	RuleHardenedRuntime             // hardened runtime without get-task-allow
	RuleNeedRoot                    // not root and no debugger entitlement
	RuleOtherUser                   // entitled, but the target belongs to another user
	RuleDevToolsAuth                // entitled, same user, still refused: Developer Tools authorization
	RuleTranslated                  // the target runs under Rosetta
	RuleUnknown                     // refused by policy for a reason the kernel does not return
)

var ruleNames = map[Rule]string{
	RuleNone: "none", RuleNoProcess: "no-process", RuleExiting: "exiting", RuleTransient: "transient",
	RuleDeveloperMode: "developer-mode", RulePlatformBinary: "platform-binary-sip",
	RuleHardenedRuntime: "hardened-runtime", RuleNeedRoot: "root-or-entitlement",
	RuleOtherUser: "other-user", RuleDevToolsAuth: "developer-tools-authorization",
	RuleTranslated: "rosetta", RuleUnknown: "unknown-policy",
}

// String returns a short kebab-case name of the rule.
func (r Rule) String() string {
	if s, ok := ruleNames[r]; ok {
		return s
	}
	return fmt.Sprintf("rule(%d)", int(r))
}

// AttachFacts is what the permission doctor knows about a failed attach.
type AttachFacts struct {
	PID      int
	Exists   bool            // kill(pid, 0) did not fail with ESRCH
	Code     mach.KernReturn // task_for_pid's result
	NullPort bool            // KERN_SUCCESS with MACH_PORT_NULL: the process is exiting
	Root     bool            // the tracer's effective uid is 0
	Entitled Tristate        // the tracer carries com.apple.security.cs.debugger
	SameUser Tristate        // the target runs as the tracer's user
	// TargetFlags are the target's code-signing flags (csops), valid when
	// FlagsKnown.
	TargetFlags mach.CSFlags
	FlagsKnown  bool
	Translated  bool // the target is an x86_64 process under Rosetta
}

// Diagnosis is the doctor's verdict: the rule, what it means for this
// target and the exact fix.
type Diagnosis struct {
	Rule   Rule
	Reason string
	Fix    string
	// Retry says a second attempt may succeed.
	Retry bool
}

// LogHint is the command that shows AMFI's reason for a refusal.
const LogHint = `log show --last 1m --predicate 'eventMessage CONTAINS "macOSTaskPolicy"'`

// Diagnose applies the decision table of docs/mach-api.md section 1.2, in
// its order: existence, exit, transient codes, Developer Mode, SIP-protected
// platform binaries, the hardened runtime, then the tracer's own privileges.
func Diagnose(f AttachFacts) Diagnosis {
	pid := f.PID
	switch {
	case !f.Exists:
		return Diagnosis{Rule: RuleNoProcess, Reason: fmt.Sprintf("no process has pid %d", pid),
			Fix: "check the pid (ps -p PID)"}
	case f.NullPort:
		return Diagnosis{Rule: RuleExiting, Reason: fmt.Sprintf("pid %d is exiting and has no task any more", pid),
			Fix: "nothing to trace; launch it again under machtrace (-- CMD ARGS)"}
	case f.Code == mach.KERN_PROTECTION_FAILURE || f.Code == mach.KERN_ABORTED:
		return Diagnosis{Rule: RuleTransient, Retry: true,
			Reason: "the authorization upcall (taskgated) failed or was interrupted",
			Fix:    "retry; if it persists, log out and in again to restart taskgated"}
	case f.Code == mach.KERN_INVALID_SECURITY:
		return Diagnosis{Rule: RuleDeveloperMode,
			Reason: "the kernel refuses to use another task's control port while Developer Mode is off",
			Fix:    "enable Developer Mode: System Settings > Privacy & Security > Developer Mode (or `sudo DevToolsSecurity -enable` and reboot when asked)"}
	case f.FlagsKnown && f.TargetFlags&mach.CS_PLATFORM_BINARY != 0:
		return Diagnosis{Rule: RulePlatformBinary,
			Reason: fmt.Sprintf("pid %d is an Apple system binary protected by SIP; it cannot be traced unless SIP is disabled, even as root", pid),
			Fix:    "trace a non-system program instead (a copy of a system tool re-signed ad hoc: `cp /bin/ls /tmp/ls && codesign --force --sign - /tmp/ls`), or disable SIP from Recovery (`csrutil disable`), which weakens the whole system"}
	case f.FlagsKnown && f.TargetFlags&mach.CS_RUNTIME != 0 && f.TargetFlags&mach.CS_GET_TASK_ALLOW == 0:
		return Diagnosis{Rule: RuleHardenedRuntime,
			Reason: fmt.Sprintf("pid %d uses the Hardened Runtime without the get-task-allow entitlement (a notarized release build); tracing it requires a debug build of it or SIP disabled", pid),
			Fix:    "trace a debug build signed with com.apple.security.get-task-allow, or a copy re-signed without the hardened runtime (`codesign --force --sign - COPY`)"}
	case f.Translated:
		return Diagnosis{Rule: RuleTranslated,
			Reason: fmt.Sprintf("pid %d is an x86_64 process running under Rosetta; the arm64 kernel has no x86 thread states to give an arm64 tracer", pid),
			Fix:    "run the darwin/amd64 build of machtrace (it runs under Rosetta too)"}
	case !f.Root && f.Entitled != Yes:
		return Diagnosis{Rule: RuleNeedRoot,
			Reason: "machtrace is not root and does not carry the com.apple.security.cs.debugger entitlement",
			Fix:    "run with sudo, or run `machtrace setup` to sign this binary with com.apple.security.cs.debugger (then approve the Developer Tools prompt, or run `sudo DevToolsSecurity -enable` once)"}
	case !f.Root && f.SameUser == No:
		return Diagnosis{Rule: RuleOtherUser,
			Reason: fmt.Sprintf("pid %d belongs to another user; the debugger entitlement only covers your own processes", pid),
			Fix:    "run with sudo"}
	case !f.Root:
		return Diagnosis{Rule: RuleDevToolsAuth,
			Reason: "the Developer Tools authorization was not granted (the prompt was refused, or there is no GUI to show it, e.g. over SSH)",
			Fix:    "run `sudo DevToolsSecurity -enable` and `sudo dseditgroup -o edit -a \"$USER\" -t user _developer`, or approve the prompt at the Mac's screen, or run with sudo"}
	}
	return Diagnosis{Rule: RuleUnknown,
		Reason: "macOS refused the task port for a reason the kernel does not return (AMFI policy, kern.tfp.policy, or a restricted target)",
		Fix:    "read the reason in the system log: " + LogHint}
}

// AttachError is a failed attach, with the doctor's diagnosis.
type AttachError struct {
	PID       int
	Err       error // the failing call's error, a *mach.KernError when Mach said no
	Diagnosis Diagnosis
}

// Error returns the cause, the reason and the fix on one line.
func (e *AttachError) Error() string {
	s := fmt.Sprintf("attach %d: %s (%s: %s; fix: %s", e.PID, e.Err, e.Diagnosis.Rule, e.Diagnosis.Reason, e.Diagnosis.Fix)
	if errors.Is(e.Err, mach.KERN_FAILURE) && e.Diagnosis.Rule != RuleNoProcess {
		s += "; details: " + LogHint
	}
	return s + ")"
}

// Unwrap returns the underlying error and the sentinel the rule maps onto
// (ErrNoProcess, ErrExited or ErrPermission).
func (e *AttachError) Unwrap() []error {
	var sentinel error
	switch e.Diagnosis.Rule {
	case RuleNoProcess:
		sentinel = ErrNoProcess
	case RuleExiting:
		sentinel = ErrExited
	default:
		sentinel = ErrPermission
	}
	return []error{e.Err, sentinel}
}
