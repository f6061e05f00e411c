#!/usr/bin/env bash
# cross-build.sh: prove that every package compiles everywhere without cgo.
# For each target, with CGO_ENABLED=0: go vet, go build, and go test -c (test
# binaries are compiled and linked, not run). On darwin without cgo the macOS
# backend compiles to stubs that report "built without cgo".
#
# usage: scripts/cross-build.sh                 (from anywhere inside the repo)
# environment:
#   TARGETS  space-separated GOOS/GOARCH pairs (default: linux/amd64
#            linux/arm64 darwin/amd64 darwin/arm64 windows/amd64)
#   PKGS     package patterns (default ./...)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGETS=${TARGETS:-linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64}
PKGS=${PKGS:-./...}
cd "$ROOT"
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

t0=$(date +%s)
fail=0
for target in $TARGETS; do
	goos=${target%/*} goarch=${target#*/}
	printf '\n== [%3ds] %s (CGO_ENABLED=0)\n' "$(($(date +%s) - t0))" "$target"
	export CGO_ENABLED=0 GOOS=$goos GOARCH=$goarch
	if ! go vet $PKGS; then
		echo "cross-build: go vet failed for $target" >&2
		fail=1
		continue
	fi
	if ! go build $PKGS; then
		echo "cross-build: go build failed for $target" >&2
		fail=1
		continue
	fi
	mkdir -p "$out/$goos-$goarch"
	if ! go test -c -o "$out/$goos-$goarch/" $PKGS 2>&1 | { grep -v "\[no test files\]" || true; }; then
		echo "cross-build: go test -c failed for $target" >&2
		fail=1
		continue
	fi
	echo "built $(find "$out/$goos-$goarch" -type f | wc -l) test binaries"
done
printf '\n== [%3ds] done\n' "$(($(date +%s) - t0))"
if [ "$fail" != 0 ]; then
	echo "cross-build: FAILED" >&2
	exit 1
fi
echo "cross-build: every package compiles for: $TARGETS"
