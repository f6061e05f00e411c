#!/usr/bin/env bash
# testvm.sh builds the virtual machine that machtrace's kernel-target tests
# boot under QEMU (TCG): Debian's cloud kernel (downloaded with apt-get
# download and unpacked with dpkg-deb -x, never installed), a busybox-static
# initramfs whose init keeps a CPU busy and can print /proc/kallsyms on the
# serial line, and the kernel's symbol table captured from one such boot.
#
#   scripts/testvm.sh [build]   build (or reuse) the VM; prints the export line
#   scripts/testvm.sh boot      boot it in the foreground, gdb stub on 127.0.0.1:${MACHTRACE_GDB_PORT:-1234}
#   scripts/testvm.sh path      print the VM directory
#
# Then: export MACHTRACE_TESTVM=<dir> and run go test ./... (the kernel tests
# skip when it is unset).
#
# Environment:
#   MACHTRACE_TESTVM_CACHE  download cache and default output (default ~/.cache/machtrace-testvm)
#   MACHTRACE_TESTVM        output directory (default $MACHTRACE_TESTVM_CACHE/vm)
#
# Needs Debian (apt) and root for apt-get install and mknod; CI runs as root.
# Output directory contents: vmlinuz, initramfs.cpio.gz, kallsyms (taken with
# nokaslr, so it equals System.map), kernel-version, env.
set -euo pipefail

CACHE=${MACHTRACE_TESTVM_CACHE:-${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/machtrace-testvm}
OUT=${MACHTRACE_TESTVM:-$CACHE/vm}
QEMU=qemu-system-x86_64

log() { printf 'testvm: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

as_root() {
	if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else die "need root for: $*"; fi
}

install_packages() {
	local missing=()
	command -v "$QEMU" >/dev/null || missing+=(qemu-system-x86)
	[ -x /bin/busybox ] && file_is_static /bin/busybox || missing+=(busybox-static)
	command -v cpio >/dev/null || missing+=(cpio)
	if [ ${#missing[@]} -gt 0 ]; then
		log "installing ${missing[*]}"
		as_root apt-get update -q >/dev/null
		as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
	fi
}

file_is_static() {
	# busybox (dynamic) and busybox-static both install /bin/busybox; only
	# the static one runs in the initramfs.
	! LC_ALL=C readelf -d "$1" 2>/dev/null | grep -q NEEDED
}

# kernel_package prints the versioned package the cloud meta-package points at.
kernel_package() {
	local pkg
	pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	if [ -z "$pkg" ]; then
		as_root apt-get update -q >/dev/null
		pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
	fi
	[ -n "$pkg" ] || die "apt-cache depends linux-image-cloud-amd64 names no kernel package"
	echo "$pkg"
}

fetch_kernel() {
	local pkg=$1 deb
	mkdir -p "$CACHE/debs"
	deb=$(ls "$CACHE/debs/${pkg}_"*.deb 2>/dev/null | head -n1 || true)
	if [ -z "$deb" ]; then
		log "downloading $pkg"
		(cd "$CACHE/debs" && apt-get download -q "$pkg" >/dev/null 2>&1) ||
			(as_root apt-get update -q >/dev/null && cd "$CACHE/debs" && apt-get download -q "$pkg" >/dev/null)
		deb=$(ls "$CACHE/debs/${pkg}_"*.deb | head -n1)
	fi
	local x="$CACHE/x-$pkg"
	rm -rf "$x" && mkdir -p "$x"
	dpkg-deb -x "$deb" "$x"
	local vmlinuz
	vmlinuz=$(ls "$x"/boot/vmlinuz-* | head -n1)
	cp "$vmlinuz" "$OUT/vmlinuz"
	basename "$vmlinuz" | sed 's/^vmlinuz-//' >"$OUT/kernel-version"
	rm -rf "$x"
}

build_initramfs() {
	local d
	d=$(mktemp -d)
	mkdir -p "$d"/{bin,sbin,proc,sys,dev,tmp}
	cp /bin/busybox "$d/bin/busybox"
	for a in sh mount cat echo head dd sleep uname poweroff; do ln -s busybox "$d/bin/$a"; done
	as_root mknod "$d/dev/console" c 5 1
	as_root mknod "$d/dev/null" c 1 3
	cat >"$d/init" <<'EOF'
#!/bin/sh
# machtrace test VM init: report, optionally dump kallsyms, keep one CPU busy.
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sys /sys
/bin/busybox mount -t devtmpfs dev /dev 2>/dev/null
echo "INIT_RUNNING uptime=$(cat /proc/uptime) kernel=$(uname -r)"
case " $(cat /proc/cmdline) " in
*" dumpsyms "*) echo KALLSYMS_BEGIN; cat /proc/kallsyms; echo KALLSYMS_END ;;
esac
busy() { while :; do i=0; while [ $i -lt 300 ]; do i=$((i+1)); done; head -c 32768 /dev/urandom > /dev/null; done; }
busy &
echo "BUSY_STARTED pid=$!"
while :; do sleep 3600; done
EOF
	chmod +x "$d/init"
	(cd "$d" && find . | cpio -o -H newc --quiet | gzip -1) >"$OUT/initramfs.cpio.gz"
	as_root rm -rf "$d"
}

# dump_kallsyms boots once with nokaslr and dumpsyms and keeps the symbol
# table the init prints (about 3.6 MB over the serial line).
dump_kallsyms() {
	local serial="$OUT/dumpsyms.log" pid i
	rm -f "$serial"
	"$QEMU" -accel tcg -nographic -m 256M -smp 1 -nic none \
		-kernel "$OUT/vmlinuz" -initrd "$OUT/initramfs.cpio.gz" \
		-append 'console=ttyS0 nokaslr quiet panic=-1 dumpsyms' -no-reboot \
		</dev/null >"$serial" 2>&1 &
	pid=$!
	for i in $(seq 1 600); do
		grep -q KALLSYMS_END "$serial" 2>/dev/null && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.5
	done
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	grep -q KALLSYMS_END "$serial" || { tail -n 20 "$serial" >&2; die "no kallsyms dump within 300 s (see $serial)"; }
	tr -d '\r' <"$serial" | sed -n '/^KALLSYMS_BEGIN$/,/^KALLSYMS_END$/p' | sed '1d;$d' >"$OUT/kallsyms"
	local n
	n=$(wc -l <"$OUT/kallsyms")
	[ "$n" -gt 10000 ] || die "kallsyms dump has only $n lines"
	grep -q ' linux_banner$' "$OUT/kallsyms" || die "kallsyms dump lacks linux_banner"
	rm -f "$serial"
}

build() {
	mkdir -p "$CACHE" "$OUT"
	install_packages
	local pkg
	pkg=$(kernel_package)
	if [ -s "$OUT/vmlinuz" ] && [ -s "$OUT/initramfs.cpio.gz" ] && [ -s "$OUT/kallsyms" ] &&
		[ "$(cat "$OUT/stamp" 2>/dev/null)" = "$pkg v1" ]; then
		log "up to date: $OUT ($pkg)"
	else
		rm -f "$OUT/stamp"
		fetch_kernel "$pkg"
		build_initramfs
		log "capturing kallsyms (one boot with nokaslr dumpsyms)"
		dump_kallsyms
		echo "$pkg v1" >"$OUT/stamp"
	fi
	cat >"$OUT/env" <<EOF
MACHTRACE_TESTVM=$OUT
QEMU=$(command -v "$QEMU")
KERNEL_PACKAGE=$pkg
KERNEL_VERSION=$(cat "$OUT/kernel-version")
EOF
	log "ready: $OUT ($(cat "$OUT/kernel-version"), $(wc -l <"$OUT/kallsyms") symbols)"
	echo "export MACHTRACE_TESTVM=$OUT"
}

boot() {
	[ -s "$OUT/vmlinuz" ] || die "no VM in $OUT: run $0 build first"
	exec "$QEMU" -accel tcg -nographic -m 256M -smp "${MACHTRACE_SMP:-2}" -nic none \
		-kernel "$OUT/vmlinuz" -initrd "$OUT/initramfs.cpio.gz" \
		-append 'console=ttyS0 quiet panic=-1' -no-reboot \
		-gdb "tcp:127.0.0.1:${MACHTRACE_GDB_PORT:-1234}" \
		-qmp "unix:$OUT/qmp.sock,server=on,wait=off"
}

case "${1:-build}" in
build) build ;;
boot) boot ;;
path) echo "$OUT" ;;
*) die "usage: $0 [build|boot|path]" ;;
esac
