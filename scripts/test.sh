#!/usr/bin/env bash
# test.sh: machtrace's whole test suite, as CI runs it, on a fresh Debian
# machine with Go (run as root: ptrace tests trace child processes, and the
# kernel tests install QEMU with apt).
#
#   scripts/test.sh            build the kernel test VM (cached) and run every test
#   NO_VM=1 scripts/test.sh    skip the VM: the kernel-target tests then skip
#
# Packages run one at a time (-p 1): the sampling tests measure shares of CPU
# time and a QEMU guest on the other core would skew them.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${NO_VM:-}" ] && [ -z "${MACHTRACE_TESTVM:-}" ]; then
	echo "== building the kernel test VM (scripts/testvm.sh; cached after the first run)"
	start=$(date +%s)
	eval "$(scripts/testvm.sh build | grep '^export ')"
	echo "   VM ready in $(( $(date +%s) - start ))s: MACHTRACE_TESTVM=$MACHTRACE_TESTVM"
fi
if [ -z "${LLDB_KDP:-}" ] && [ -x /opt/lldb-kdp/build-lldb/bin/lldb ]; then
	export LLDB_KDP=/opt/lldb-kdp/build-lldb/bin/lldb # built by shared/tools/build-lldb-kdp.sh
fi

echo "== go test ./... (MACHTRACE_TESTVM=${MACHTRACE_TESTVM:-unset} LLDB_KDP=${LLDB_KDP:-unset})"
go test -p 1 -count=1 -timeout 20m "$@" ./...
