package darwin

import (
	"errors"
	"strings"
	"testing"

	"github.com/machtrace/machtrace/mach"
)

func TestDiagnoseDecisionTable(t *testing.T) {
	const (
		runtime  = mach.CS_VALID | mach.CS_RUNTIME
		debugApp = mach.CS_VALID | mach.CS_RUNTIME | mach.CS_GET_TASK_ALLOW
		system   = mach.CS_VALID | mach.CS_RUNTIME | mach.CS_PLATFORM_BINARY
		adhoc    = mach.CS_VALID | mach.CS_ADHOC | mach.CS_LINKER_SIGNED
	)
	fail := mach.KERN_FAILURE
	tests := []struct {
		name  string
		f     AttachFacts
		rule  Rule
		words string // must appear in reason or fix
	}{
		{"no such pid", AttachFacts{Code: fail}, RuleNoProcess, "no process"},
		{"exiting", AttachFacts{Exists: true, NullPort: true}, RuleExiting, "exiting"},
		{"taskgated died", AttachFacts{Exists: true, Code: mach.KERN_PROTECTION_FAILURE}, RuleTransient, "retry"},
		{"interrupted", AttachFacts{Exists: true, Code: mach.KERN_ABORTED}, RuleTransient, "retry"},
		{"developer mode", AttachFacts{Exists: true, Code: mach.KERN_INVALID_SECURITY, Root: true}, RuleDeveloperMode, "Developer Mode"},
		{"system binary as root", AttachFacts{Exists: true, Code: fail, Root: true, TargetFlags: system, FlagsKnown: true}, RulePlatformBinary, "csrutil disable"},
		{"system binary entitled", AttachFacts{Exists: true, Code: fail, Entitled: Yes, TargetFlags: system, FlagsKnown: true}, RulePlatformBinary, "SIP"},
		{"hardened release as root", AttachFacts{Exists: true, Code: fail, Root: true, TargetFlags: runtime, FlagsKnown: true}, RuleHardenedRuntime, "get-task-allow"},
		{"rosetta", AttachFacts{Exists: true, Code: fail, Root: true, Translated: true, TargetFlags: adhoc, FlagsKnown: true}, RuleTranslated, "darwin/amd64"},
		{"plain user, plain target", AttachFacts{Exists: true, Code: fail, Entitled: No, TargetFlags: adhoc, FlagsKnown: true}, RuleNeedRoot, "machtrace setup"},
		{"plain user, entitlement unknown", AttachFacts{Exists: true, Code: fail, TargetFlags: debugApp, FlagsKnown: true}, RuleNeedRoot, "sudo"},
		{"entitled, other user", AttachFacts{Exists: true, Code: fail, Entitled: Yes, SameUser: No, TargetFlags: adhoc, FlagsKnown: true}, RuleOtherUser, "sudo"},
		{"entitled, prompt refused", AttachFacts{Exists: true, Code: fail, Entitled: Yes, SameUser: Yes, TargetFlags: adhoc, FlagsKnown: true}, RuleDevToolsAuth, "DevToolsSecurity -enable"},
		{"root, plain target, still refused", AttachFacts{Exists: true, Code: fail, Root: true, TargetFlags: adhoc, FlagsKnown: true}, RuleUnknown, "macOSTaskPolicy"},
		{"root, flags unreadable", AttachFacts{Exists: true, Code: fail, Root: true}, RuleUnknown, "log show"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Diagnose(tt.f)
			if d.Rule != tt.rule {
				t.Fatalf("rule %v, want %v (%s)", d.Rule, tt.rule, d.Reason)
			}
			if !strings.Contains(d.Reason+" "+d.Fix, tt.words) {
				t.Errorf("diagnosis lacks %q: %+v", tt.words, d)
			}
			if d.Retry != (tt.rule == RuleTransient) {
				t.Errorf("Retry = %v", d.Retry)
			}
		})
	}
}

func TestAttachErrorMatching(t *testing.T) {
	kerr := &mach.KernError{Op: "task_for_pid", Code: mach.KERN_FAILURE}
	e := &AttachError{PID: 7, Err: kerr, Diagnosis: Diagnose(AttachFacts{PID: 7, Exists: true, Code: mach.KERN_FAILURE})}
	msg := e.Error()
	for _, want := range []string{"attach 7", "KERN_FAILURE (5): (os/kern) failure", "root-or-entitlement", "machtrace setup", LogHint} {
		if !strings.Contains(msg, want) {
			t.Errorf("%q lacks %q", msg, want)
		}
	}
	if !errors.Is(e, ErrPermission) || !errors.Is(e, mach.KERN_FAILURE) || errors.Is(e, ErrNoProcess) {
		t.Error("sentinel matching")
	}
	gone := &AttachError{PID: 7, Err: kerr, Diagnosis: Diagnose(AttachFacts{PID: 7})}
	if !errors.Is(gone, ErrNoProcess) || strings.Contains(gone.Error(), "log show") {
		t.Errorf("no-process error: %v", gone)
	}
	if Rule(99).String() != "rule(99)" || RuleHardenedRuntime.String() != "hardened-runtime" {
		t.Error("Rule.String")
	}
}

func TestHasEntitlement(t *testing.T) {
	if !HasEntitlement(DebuggerEntitlementsPlist, DebuggerEntitlement) {
		t.Error("the shipped plist does not grant the debugger entitlement")
	}
	// Signed with the hardened runtime, machtrace must stay traceable itself:
	// selftest traces a copy of it.
	if !HasEntitlement(DebuggerEntitlementsPlist, "com.apple.security.get-task-allow") {
		t.Error("the shipped plist lacks get-task-allow")
	}
	off := `<?xml version="1.0"?><plist version="1.0"><dict>
<key>com.apple.security.get-task-allow</key><true/>
<key>com.apple.security.cs.debugger</key><false/></dict></plist>`
	if HasEntitlement([]byte(off), DebuggerEntitlement) {
		t.Error("false value read as true")
	}
	if !HasEntitlement([]byte(off), "com.apple.security.get-task-allow") {
		t.Error("get-task-allow not found")
	}
	if HasEntitlement(nil, DebuggerEntitlement) || HasEntitlement([]byte("<plist><dict><key>"), DebuggerEntitlement) {
		t.Error("empty or truncated plist")
	}
}
