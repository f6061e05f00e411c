//go:build ignore

// machocheck verifies the outputs of darwin-xbuild.sh with debug/macho: every
// file under ROOT/bin_ARCH and ROOT/tests_ARCH must be a Mach-O executable
// for ARCH that links only system libraries (/usr/lib, system frameworks),
// arm64 ones must carry a code signature, and the mach package's test binary
// must import the Mach routines.
//
// usage: go run scripts/machocheck.go -root OUT_DIR amd64 arm64
package main

import (
	"debug/macho"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

var cpus = map[string]macho.Cpu{"amd64": macho.CpuAmd64, "arm64": macho.CpuArm64}

// Load commands debug/macho does not name.
const (
	lcCodeSignature = 0x1d
	lcBuildVersion  = 0x32
)

// mustImport are symbols the mach test binary must bind from libSystem.
var mustImport = []string{"_task_for_pid", "_task_suspend2", "_task_resume2", "_task_threads",
	"_thread_get_state", "_thread_set_state", "_thread_info", "_mach_vm_read_overwrite",
	"_mach_vm_write", "_mach_vm_protect", "_mach_vm_region", "_mach_vm_region_recurse",
	"_task_info", "_pid_for_task", "_task_read_for_pid", "_csops", "_posix_spawn"}

func main() {
	root := flag.String("root", "dist/darwin", "output directory of darwin-xbuild.sh")
	flag.Parse()
	bad := 0
	for _, arch := range flag.Args() {
		cpu, ok := cpus[arch]
		if !ok {
			fmt.Fprintf(os.Stderr, "machocheck: unknown arch %q\n", arch)
			os.Exit(2)
		}
		var files []string
		for _, dir := range []string{"bin_" + arch, "tests_" + arch} {
			ents, _ := os.ReadDir(filepath.Join(*root, dir))
			for _, e := range ents {
				files = append(files, filepath.Join(*root, dir, e.Name()))
			}
		}
		if len(files) == 0 {
			fmt.Printf("FAIL darwin/%s: no outputs under %s\n", arch, *root)
			bad++
		}
		for _, f := range files {
			line, err := check(f, cpu)
			if err != nil {
				fmt.Printf("FAIL %s: %v\n", f, err)
				bad++
				continue
			}
			fmt.Printf("ok   %s: %s\n", f, line)
		}
	}
	if bad > 0 {
		fmt.Printf("machocheck: %d problem(s)\n", bad)
		os.Exit(1)
	}
}

func check(path string, cpu macho.Cpu) (string, error) {
	f, err := macho.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	if f.Cpu != cpu {
		return "", fmt.Errorf("cpu %v, want %v", f.Cpu, cpu)
	}
	if f.Type != macho.TypeExec {
		return "", fmt.Errorf("file type %v, want executable", f.Type)
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		return "", err
	}
	// Only libraries every Mac has: libSystem and friends (libresolv for
	// package net) and system frameworks. Anything else would be a library
	// of the build machine leaking into the link.
	for _, l := range libs {
		if !strings.HasPrefix(l, "/usr/lib/") && !strings.HasPrefix(l, "/System/Library/Frameworks/") {
			return "", fmt.Errorf("links unexpected library %s", l)
		}
	}
	signed, minos := false, ""
	for _, l := range f.Loads {
		raw := l.Raw()
		if len(raw) < 8 {
			continue
		}
		switch f.ByteOrder.Uint32(raw) {
		case lcCodeSignature:
			signed = true
		case lcBuildVersion:
			if len(raw) >= 16 {
				v := binary.LittleEndian.Uint32(raw[12:])
				minos = fmt.Sprintf("%d.%d", v>>16, (v>>8)&0xff)
			}
		}
	}
	if cpu == macho.CpuArm64 && !signed {
		return "", fmt.Errorf("arm64 executable without LC_CODE_SIGNATURE (the kernel would kill it)")
	}
	if filepath.Base(path) == "mach.test" {
		syms, err := f.ImportedSymbols()
		if err != nil {
			return "", err
		}
		for _, s := range mustImport {
			if !slices.Contains(syms, s) {
				return "", fmt.Errorf("does not import %s", s)
			}
		}
	}
	short := make([]string, len(libs))
	for i, l := range libs {
		short[i] = filepath.Base(l)
	}
	return fmt.Sprintf("Mach-O %v executable, minos %s, signed=%v, links %s", f.Cpu, minos, signed, strings.Join(short, ",")), nil
}
