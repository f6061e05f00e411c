package darwin

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sort"
	"time"
)

// Image is one Mach-O image loaded in a task, as dyld publishes it.
type Image struct {
	Path string
	// Base is the address of the image's mach_header: where it is loaded.
	Base uint64
	// Start and End bound the image's __TEXT segment in memory; End equals
	// Start when the header could not be read.
	Start, End uint64
	// Slide is Base minus the unslid __TEXT vmaddr: add it to a file's
	// symbol address to get the runtime address. For images of the dyld
	// shared cache it is the cache's slide.
	Slide uint64
	// UUID is the image's LC_UUID, zero if none; it names the matching
	// debug symbols.
	UUID [16]byte
}

// ErrImageListBusy means dyld was changing its image list at every attempt
// to read it (infoArray stayed NULL); try again once the target runs.
var ErrImageListBusy = errors.New("dyld is updating its image list")

// Layout of struct dyld_all_image_infos (mach-o/dyld_images.h, LP64), as far
// as machtrace reads it; docs/mach-api.md section 6 has the full table.
const (
	aiiVersion        = 0
	aiiInfoArrayCount = 4
	aiiInfoArray      = 8
	aiiDyldLoadAddr   = 32 // version >= 2
	aiiTimestamp      = 184
	aiiDyldPath       = 192 // version >= 15
	aiiReadSize       = 200

	imageInfoSize = 24 // struct dyld_image_info: load address, path, mod date

	maxImages  = 1 << 16
	maxPathLen = 1024
)

// allImageInfos is the part of dyld_all_image_infos that machtrace uses.
type allImageInfos struct {
	Version   uint32
	Count     uint32
	InfoArray uint64
	DyldBase  uint64
	Timestamp uint64 // infoArrayChangeTimestamp, version >= 15
	DyldPath  uint64 // char *, version >= 15
}

func readAllImageInfos(r io.ReaderAt, addr uint64) (allImageInfos, error) {
	b := make([]byte, aiiReadSize)
	n, err := r.ReadAt(b, int64(addr))
	if n < aiiDyldLoadAddr+8 {
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return allImageInfos{}, fmt.Errorf("read dyld_all_image_infos at %#x: %w", addr, err)
	}
	le := binary.LittleEndian
	a := allImageInfos{
		Version:   le.Uint32(b[aiiVersion:]),
		Count:     le.Uint32(b[aiiInfoArrayCount:]),
		InfoArray: le.Uint64(b[aiiInfoArray:]),
	}
	if a.Version >= 2 {
		a.DyldBase = le.Uint64(b[aiiDyldLoadAddr:])
	}
	if a.Version >= 15 && n >= aiiReadSize {
		a.Timestamp = le.Uint64(b[aiiTimestamp:])
		a.DyldPath = le.Uint64(b[aiiDyldPath:])
	}
	return a, nil
}

// ReadImages reads the image list of a task from dyld_all_image_infos at
// addr (the address task_info(TASK_DYLD_INFO) reports), through r, which
// reads the task's memory at absolute addresses.
//
// dyld updates the list while the task runs: it sets infoArray to NULL,
// changes the array, then publishes it again with a new timestamp. So
// ReadImages reads the header, the array, and the header again, and retries
// (up to tries times, pausing briefly) when the array was NULL or the header
// changed meanwhile. A list that is never stable yields ErrImageListBusy,
// together with dyld itself. A task that has not run dyld yet (launched
// suspended) has an empty list.
//
// Each image's path and Mach-O header are read too; an image whose header
// cannot be read is still listed, with End equal to Start (except dyld
// itself, whose address is trusted only when a Mach-O header is found there).
func ReadImages(r io.ReaderAt, addr uint64, tries int) ([]Image, error) {
	if tries < 1 {
		tries = 1
	}
	var (
		hdr     allImageInfos
		entries []byte
		err     error
		stable  bool
	)
	for attempt := 0; attempt < tries && !stable; attempt++ {
		if attempt > 0 {
			time.Sleep(time.Millisecond << min(attempt, 5))
		}
		if hdr, err = readAllImageInfos(r, addr); err != nil {
			return nil, err
		}
		if hdr.InfoArray == 0 {
			if hdr.Count == 0 {
				stable = true // nothing loaded yet
			}
			continue
		}
		if hdr.Count > maxImages {
			return nil, fmt.Errorf("dyld_all_image_infos at %#x: implausible image count %d", addr, hdr.Count)
		}
		entries = make([]byte, int(hdr.Count)*imageInfoSize)
		if n, err := r.ReadAt(entries, int64(hdr.InfoArray)); n < len(entries) {
			return nil, fmt.Errorf("read dyld image array at %#x: %w", hdr.InfoArray, orEOF(err))
		}
		again, err := readAllImageInfos(r, addr)
		if err != nil {
			return nil, err
		}
		stable = again == hdr
	}
	var images []Image
	if stable && hdr.InfoArray != 0 {
		le := binary.LittleEndian
		for i := 0; i < int(hdr.Count); i++ {
			e := entries[i*imageInfoSize:]
			base, pathAddr := le.Uint64(e[0:]), le.Uint64(e[8:])
			if base == 0 {
				continue
			}
			images = append(images, imageAt(r, base, readCString(r, pathAddr)))
		}
	}
	if hdr.DyldBase != 0 {
		path := "/usr/lib/dyld"
		if hdr.DyldPath != 0 {
			if p := readCString(r, hdr.DyldPath); p != "" {
				path = p
			}
		}
		// Before dyld has run (a task launched suspended), its own pointers
		// are not yet rebased: keep dyld only if a Mach-O header is there.
		if im := imageAt(r, hdr.DyldBase, path); im.End > im.Start {
			images = append(images, im)
		}
	}
	sort.Slice(images, func(i, j int) bool { return images[i].Base < images[j].Base })
	if !stable {
		return images, fmt.Errorf("read image list at %#x after %d tries: %w", addr, tries, ErrImageListBusy)
	}
	return images, nil
}

func orEOF(err error) error {
	if err == nil {
		return io.ErrUnexpectedEOF
	}
	return err
}

// readCString reads a NUL-terminated string of at most maxPathLen bytes. It
// reads in small steps that stop at page boundaries, so a string near the
// end of a mapping is still found.
func readCString(r io.ReaderAt, addr uint64) string {
	if addr == 0 {
		return ""
	}
	var out []byte
	const step = 256
	buf := make([]byte, step)
	for len(out) < maxPathLen {
		a := addr + uint64(len(out))
		chunk := step - int(a%step) // never crosses a 256-byte (so page) boundary
		n, _ := r.ReadAt(buf[:chunk], int64(a))
		if i := bytes.IndexByte(buf[:n], 0); i >= 0 {
			return string(append(out, buf[:i]...))
		}
		out = append(out, buf[:n]...)
		if n < chunk {
			break
		}
	}
	return string(out)
}

// Mach-O constants (mach-o/loader.h).
const (
	mhMagic64       = 0xfeedfacf
	lcSegment64     = 0x19
	lcUUID          = 0x1b
	machHeader64Len = 32
	maxLoadCmds     = 1 << 20
)

// imageAt describes the image whose mach_header_64 is at base: its __TEXT
// range, slide and UUID, read from the load commands in memory.
func imageAt(r io.ReaderAt, base uint64, path string) Image {
	im := Image{Path: path, Base: base, Start: base, End: base}
	hdr := make([]byte, machHeader64Len)
	if n, _ := r.ReadAt(hdr, int64(base)); n < len(hdr) {
		return im
	}
	le := binary.LittleEndian
	if le.Uint32(hdr[0:]) != mhMagic64 {
		return im
	}
	ncmds, sizeofcmds := le.Uint32(hdr[16:]), le.Uint32(hdr[20:])
	if sizeofcmds > maxLoadCmds {
		return im
	}
	cmds := make([]byte, sizeofcmds)
	if n, _ := r.ReadAt(cmds, int64(base+machHeader64Len)); n < len(cmds) {
		return im
	}
	for i, off := uint32(0), uint32(0); i < ncmds && off+8 <= sizeofcmds; i++ {
		cmd, size := le.Uint32(cmds[off:]), le.Uint32(cmds[off+4:])
		if size < 8 || off+size > sizeofcmds {
			break
		}
		c := cmds[off : off+size]
		switch {
		case cmd == lcSegment64 && size >= 72:
			// segment_command_64: cmd, cmdsize, segname[16], vmaddr, vmsize, ...
			if string(bytes.TrimRight(c[8:24], "\x00")) == "__TEXT" {
				vmaddr, vmsize := le.Uint64(c[24:]), le.Uint64(c[32:])
				im.Slide = base - vmaddr
				if end := base + vmsize; end >= base { // not past the top of memory
					im.End = end
				}
			}
		case cmd == lcUUID && size >= 24:
			copy(im.UUID[:], c[8:24])
		}
		off += size
	}
	return im
}
