package ptrace

import (
	"strings"
	"testing"
)

func TestDiagnose(t *testing.T) {
	for _, tc := range []struct {
		name string
		h    HostFacts
		want string
	}{
		{"already traced", HostFacts{EUID: 0, HasCapPtrace: true, PtraceScope: 1, TargetUID: 0, TargetTracer: 77}, "already traced by pid 77"},
		{"scope 3", HostFacts{EUID: 0, HasCapPtrace: true, PtraceScope: 3}, "disabled until reboot"},
		{"scope 2 without cap", HostFacts{EUID: 1000, PtraceScope: 2, TargetUID: 1000}, "CAP_SYS_PTRACE"},
		{"other user", HostFacts{EUID: 1000, PtraceScope: 0, TargetUID: 0}, "belongs to uid 0"},
		{"scope 1 not descendant", HostFacts{EUID: 1000, PtraceScope: 1, TargetUID: 1000}, "ptrace_scope is 1"},
		{"scope 1 descendant", HostFacts{EUID: 1000, PtraceScope: 1, TargetUID: 1000, TargetIsDescendant: true}, "not dumpable"},
		{"root but refused", HostFacts{EUID: 0, HasCapPtrace: true, PtraceScope: 1, TargetUID: 0}, "security module"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := diagnose(tc.h); !strings.Contains(got, tc.want) {
				t.Errorf("diagnose(%+v) = %q, want it to mention %q", tc.h, got, tc.want)
			}
		})
	}
}
