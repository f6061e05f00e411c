package darwin

import (
	"io"
	"testing"
)

// sliceMemory is memory holding b at base; everything else is unmapped.
type sliceMemory struct {
	base uint64
	b    []byte
}

func (m sliceMemory) ReadAt(p []byte, off int64) (int, error) {
	a := uint64(off)
	if a < m.base || a >= m.base+uint64(len(m.b)) {
		return 0, io.EOF
	}
	n := copy(p, m.b[a-m.base:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// FuzzReadImages feeds arbitrary memory to the image-list reader: whatever
// dyld's structures contain, ReadImages must not panic or loop, and an image
// must never end before it starts.
func FuzzReadImages(f *testing.F) {
	// Seed: a one-image list whose array, path and header follow the header.
	seed := make([]byte, 0x400)
	le := func(off int, v uint64, n int) {
		for i := 0; i < n; i++ {
			seed[off+i] = byte(v >> (8 * i))
		}
	}
	const base = 0x1000
	le(0, 17, 4)
	le(4, 1, 4)
	le(8, base+0x100, 8)     // infoArray
	le(0x100, base+0x200, 8) // image load address
	le(0x108, base+0x180, 8) // path
	copy(seed[0x180:], "/bin/x\x00")
	le(0x200, mhMagic64, 4)
	le(0x210, 1, 4)  // ncmds
	le(0x214, 72, 4) // sizeofcmds
	le(0x220, lcSegment64, 4)
	le(0x224, 72, 4)
	copy(seed[0x228:], "__TEXT")
	le(0x240, 0x1000, 8)
	f.Add(seed)
	f.Fuzz(func(t *testing.T, b []byte) {
		images, _ := ReadImages(sliceMemory{base: base, b: b}, base, 2)
		for _, im := range images {
			if im.End < im.Start {
				t.Fatalf("image ends before it starts: %+v", im)
			}
		}
	})
}
