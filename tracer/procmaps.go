package tracer

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// ParseProcMaps parses the Linux /proc/PID/maps format into images, one per
// mapping. Base is the start of the file's mapping at offset 0, which is
// where its ELF header is loaded.
func ParseProcMaps(r io.Reader) ([]Image, error) {
	var images []Image
	base := map[string]uint64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		// start-end perms offset dev inode path
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		lo, hi, ok := strings.Cut(f[0], "-")
		if !ok {
			return nil, fmt.Errorf("maps line %d: bad range %q", line, f[0])
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		off, err3 := strconv.ParseUint(f[2], 16, 64)
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, fmt.Errorf("maps line %d: bad number in %q", line, sc.Text())
		}
		path := ""
		if len(f) >= 6 {
			path = strings.Join(f[5:], " ")
		}
		if off == 0 && path != "" {
			if _, seen := base[path]; !seen {
				base[path] = start
			}
		}
		images = append(images, Image{Path: path, Start: start, End: end, Offset: off, Perms: f[1], Base: base[path]})
	}
	return images, sc.Err()
}
