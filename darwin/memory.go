package darwin

import "fmt"

// readFunc reads len(p) bytes at addr, all or nothing, as
// mach_vm_read_overwrite does.
type readFunc func(addr uint64, p []byte) (int, error)

// readPaged fills p from addr. It first tries the whole range in one call
// (one Mach round trip in the common case); if that fails, it reads page by
// page, since a single unmapped or unreadable page fails a whole
// mach_vm_read_overwrite. It returns how many leading bytes were read and,
// when fewer than len(p), the error of the first page that failed.
func readPaged(read readFunc, addr uint64, p []byte, pageSize uint64) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if pageSize == 0 || pageSize&(pageSize-1) != 0 {
		return 0, fmt.Errorf("read memory: bad page size %d", pageSize)
	}
	n, err := read(addr, p)
	if err == nil && n == len(p) {
		return n, nil
	}
	if addr+uint64(len(p)-1) < addr {
		return 0, fmt.Errorf("read memory at %#x: range wraps the address space", addr)
	}
	// The whole range did not come back: walk it a page at a time to
	// return what is readable before the first hole.
	done := 0
	for done < len(p) {
		a := addr + uint64(done)
		chunk := int(pageSize - a%pageSize) // bytes left in this page
		if rest := len(p) - done; chunk > rest {
			chunk = rest
		}
		got, err := read(a, p[done:done+chunk])
		if err != nil {
			return done, err
		}
		if got < chunk {
			return done + got, fmt.Errorf("read memory at %#x: short read of %d bytes", a, got)
		}
		done += chunk
	}
	return done, nil
}
