package darwin

import (
	"errors"
	"testing"
)

// A synthetic dyld_all_image_infos (version 17) with two images and dyld.
const (
	aiiAddr    = 0x7ff8_4000_0000
	arrayAddr  = 0x6000_0000_1000
	pathsAddr  = 0x6000_0000_2000
	exeBase    = 0x1_0400_0000 // slid main executable, unslid __TEXT 0x1_0000_0000
	libBase    = 0x7ff8_1000_0000
	dyldBase   = 0x1_0500_0000
	dyldPathAt = 0x6000_0000_3ff8 // crosses a page boundary
)

func machHeader(k *fakeKernel, base, textVMAddr, textVMSize uint64, uuid byte) {
	k.poke32(base, mhMagic64)
	k.poke32(base+16, 3)        // ncmds
	k.poke32(base+20, 72+24+16) // sizeofcmds
	cmd := base + machHeader64Len
	// LC_SEGMENT_64 __PAGEZERO-like segment that is not __TEXT would come
	// first in a real binary; __TEXT is enough here.
	k.poke32(cmd, lcSegment64)
	k.poke32(cmd+4, 72)
	k.poke(cmd+8, []byte("__TEXT"))
	k.poke64(cmd+24, textVMAddr)
	k.poke64(cmd+32, textVMSize)
	cmd += 72
	k.poke32(cmd, lcUUID)
	k.poke32(cmd+4, 24)
	u := make([]byte, 16)
	for i := range u {
		u[i] = uuid
	}
	k.poke(cmd+8, u)
	cmd += 24
	k.poke32(cmd, 0x2) // LC_SYMTAB, skipped
	k.poke32(cmd+4, 16)
}

func dyldFixture() *fakeKernel {
	k := newFakeKernel()
	k.poke32(aiiAddr+aiiVersion, 17)
	k.poke32(aiiAddr+aiiInfoArrayCount, 2)
	k.poke64(aiiAddr+aiiInfoArray, arrayAddr)
	k.poke64(aiiAddr+aiiDyldLoadAddr, dyldBase)
	k.poke64(aiiAddr+aiiTimestamp, 12345)
	k.poke64(aiiAddr+aiiDyldPath, dyldPathAt)
	k.poke(aiiAddr+aiiReadSize, make([]byte, 168)) // rest of the 368-byte struct
	// infoArray: {load address, path, mod date} x 2, the library first.
	k.poke64(arrayAddr, libBase)
	k.poke64(arrayAddr+8, pathsAddr+0x100)
	k.poke64(arrayAddr+24, exeBase)
	k.poke64(arrayAddr+32, pathsAddr)
	k.poke(pathsAddr, []byte("/Users/me/bin/workload\x00"))
	k.poke(pathsAddr+0x100, []byte("/usr/lib/libSystem.B.dylib\x00"))
	k.poke(dyldPathAt, []byte("/usr/lib/dyld\x00"))
	machHeader(k, exeBase, 0x1_0000_0000, 0x8000, 0xaa)
	machHeader(k, libBase, 0x7ff8_0000_0000, 0x2000, 0xbb) // shared cache: slide 0x1000_0000
	machHeader(k, dyldBase, 0, 0x6_0000, 0xcc)
	return k
}

func TestReadImages(t *testing.T) {
	k := dyldFixture()
	images, err := ReadImages(k, aiiAddr, 3)
	if err != nil {
		t.Fatal(err)
	}
	want := []Image{
		{Path: "/Users/me/bin/workload", Base: exeBase, Start: exeBase, End: exeBase + 0x8000, Slide: 0x400_0000},
		{Path: "/usr/lib/dyld", Base: dyldBase, Start: dyldBase, End: dyldBase + 0x6_0000, Slide: dyldBase},
		{Path: "/usr/lib/libSystem.B.dylib", Base: libBase, Start: libBase, End: libBase + 0x2000, Slide: 0x1000_0000},
	}
	if len(images) != len(want) {
		t.Fatalf("got %d images: %+v", len(images), images)
	}
	for i, w := range want {
		g := images[i]
		if g.Path != w.Path || g.Base != w.Base || g.Start != w.Start || g.End != w.End || g.Slide != w.Slide {
			t.Errorf("image %d = %+v\nwant %+v", i, g, w)
		}
	}
	if images[0].UUID[0] != 0xaa || images[2].UUID[15] != 0xbb {
		t.Error("UUIDs not read")
	}
}

func TestReadImagesBeforeDyldRan(t *testing.T) {
	k := newFakeKernel()
	k.poke32(aiiAddr, 17) // version set statically, nothing loaded yet
	k.poke(aiiAddr+4, make([]byte, aiiReadSize))
	images, err := ReadImages(k, aiiAddr, 3)
	if err != nil || len(images) != 0 {
		t.Errorf("images %v, err %v", images, err)
	}
}

func TestReadImagesUnrebasedDyld(t *testing.T) {
	k := newFakeKernel()
	k.poke32(aiiAddr, 17) // launched suspended: nothing loaded, dyld's own
	k.poke(aiiAddr+4, make([]byte, aiiReadSize))
	k.poke64(aiiAddr+aiiDyldLoadAddr, 0x4000) // pointer not yet slid: no header there
	images, err := ReadImages(k, aiiAddr, 1)
	if err != nil || len(images) != 0 {
		t.Errorf("images %+v, err %v; want none", images, err)
	}
}

func TestReadImagesBusy(t *testing.T) {
	k := dyldFixture()
	k.poke64(aiiAddr+aiiInfoArray, 0) // dyld is in the middle of a change
	images, err := ReadImages(k, aiiAddr, 2)
	if !errors.Is(err, ErrImageListBusy) {
		t.Fatalf("err = %v, want ErrImageListBusy", err)
	}
	if len(images) != 1 || images[0].Path != "/usr/lib/dyld" {
		t.Errorf("partial list %+v, want dyld alone", images)
	}
}

// changingReader publishes a new timestamp right after the first array read,
// as dyld does when it loads a library during the read.
type changingReader struct {
	k       *fakeKernel
	changed bool
}

func (r *changingReader) ReadAt(p []byte, off int64) (int, error) {
	n, err := r.k.ReadAt(p, off)
	if uint64(off) == arrayAddr && !r.changed {
		r.changed = true
		r.k.poke64(aiiAddr+aiiTimestamp, 99999)
	}
	return n, err
}

func TestReadImagesRetriesOnChange(t *testing.T) {
	k := dyldFixture()
	r := &changingReader{k: k}
	images, err := ReadImages(r, aiiAddr, 3)
	if err != nil || len(images) != 3 || !r.changed {
		t.Fatalf("images %d, err %v", len(images), err)
	}
	k = dyldFixture()
	if _, err := ReadImages(&changingReader{k: k}, aiiAddr, 1); !errors.Is(err, ErrImageListBusy) {
		t.Errorf("one try while changing: %v", err)
	}
}

func TestReadImagesBadInput(t *testing.T) {
	k := newFakeKernel()
	if _, err := ReadImages(k, 0x1000, 1); err == nil {
		t.Error("unmapped all_image_infos accepted")
	}
	k.poke32(aiiAddr, 17)
	k.poke32(aiiAddr+4, maxImages+1)
	k.poke64(aiiAddr+8, arrayAddr)
	k.poke(aiiAddr+16, make([]byte, aiiReadSize))
	if _, err := ReadImages(k, aiiAddr, 1); err == nil {
		t.Error("implausible count accepted")
	}
	// A header that cannot be read leaves the image with an empty range.
	im := imageAt(k, 0x9999_0000, "x")
	if im.Start != im.End || im.Path != "x" {
		t.Errorf("unreadable header: %+v", im)
	}
}

func TestImagesThroughTask(t *testing.T) {
	k := dyldFixture()
	k.dyld.AllImageInfoAddr = aiiAddr
	k.dyld.AllImageInfoFormat = 1
	task := attachFake(t, k, "arm64")
	images, err := task.Images()
	if err != nil || len(images) != 3 {
		t.Fatalf("Images: %d, %v", len(images), err)
	}
}
