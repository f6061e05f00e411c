package tracer

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"html"
	"io"
	"slices"
)

// flameNode is one frame of the merged call tree.
type flameNode struct {
	name     string
	count    int
	children map[string]*flameNode
}

func (n *flameNode) child(name string) *flameNode {
	if n.children == nil {
		n.children = map[string]*flameNode{}
	}
	c := n.children[name]
	if c == nil {
		c = &flameNode{name: name}
		n.children[name] = c
	}
	return c
}

// flame layout constants (pixels).
const (
	flameWidth    = 1200
	flameRowH     = 17
	flameTop      = 40
	flameMinWidth = 0.5 // frames narrower than this are not drawn
)

// WriteFlameGraph writes the profile as a self-contained SVG flame graph:
// callers at the bottom, callees stacked above, each frame as wide as the
// samples it appears in. Hovering a frame shows its name and share. With
// perThread, each thread gets its own tower under a "thread" frame.
func WriteFlameGraph(w io.Writer, p *Profile, sym *Symbolizer, perThread bool) error {
	root := &flameNode{name: "all"}
	names := map[uint64]string{}
	name := func(stack []uint64, i int) string {
		a := frameAddr(stack, i)
		if n, ok := names[a]; ok {
			return n
		}
		n := frameName(sym.Lookup(a))
		names[a] = n
		return n
	}
	depth := 0
	for _, s := range p.Samples {
		n := root
		n.count++
		d := 0
		if perThread {
			tn := cmp.Or(p.ThreadNames[s.Thread], "thread")
			n = n.child(fmt.Sprintf("%s [%d]", tn, s.Thread))
			n.count++
			d++
		}
		for i := len(s.Stack) - 1; i >= 0; i-- {
			n = n.child(name(s.Stack, i))
			n.count++
			d++
		}
		depth = max(depth, d)
	}
	height := flameTop + (depth+1)*flameRowH + 20
	title := fmt.Sprintf("machtrace: %s, %d samples at %g Hz", p.Target, len(p.Samples), p.Stats.Rate)
	if _, err := fmt.Fprintf(w, `<?xml version="1.0" standalone="no"?>
<svg version="1.1" width="%d" height="%d" xmlns="http://www.w3.org/2000/svg" font-family="Verdana, sans-serif" font-size="12">
<rect x="0" y="0" width="100%%" height="100%%" fill="#f8f8f8"/>
<text x="%d" y="24" text-anchor="middle" font-size="16">%s</text>
`, flameWidth, height, flameWidth/2, html.EscapeString(title)); err != nil {
		return err
	}
	if root.count > 0 {
		scale := float64(flameWidth-20) / float64(root.count)
		if err := drawFlame(w, root, 10, height-20-flameRowH, scale, root.count); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, "</svg>")
	return err
}

// drawFlame draws n at (x, y) and its children above it, widest first.
func drawFlame(w io.Writer, n *flameNode, x float64, y int, scale float64, total int) error {
	width := float64(n.count) * scale
	if width < flameMinWidth {
		return nil
	}
	h := fnv.New32a()
	h.Write([]byte(n.name))
	v := h.Sum32()
	color := fmt.Sprintf("rgb(%d,%d,%d)", 205+v%50, 80+(v>>8)%130, 40+(v>>16)%50)
	label := ""
	if chars := int(width / 7); chars >= 3 {
		label = n.name
		if len(label) > chars {
			label = label[:chars-2] + ".."
		}
	}
	if _, err := fmt.Fprintf(w, `<g><title>%s (%d samples, %.2f%%)</title><rect x="%.1f" y="%d" width="%.1f" height="%d" fill="%s" rx="2"/><text x="%.1f" y="%d">%s</text></g>
`, html.EscapeString(n.name), n.count, 100*float64(n.count)/float64(total), x, y, width, flameRowH-1, color, x+3, y+12, html.EscapeString(label)); err != nil {
		return err
	}
	kids := make([]*flameNode, 0, len(n.children))
	for _, c := range n.children {
		kids = append(kids, c)
	}
	slices.SortFunc(kids, func(a, b *flameNode) int { return cmp.Compare(a.name, b.name) })
	cx := x
	for _, c := range kids {
		if err := drawFlame(w, c, cx, y-flameRowH, scale, total); err != nil {
			return err
		}
		cx += float64(c.count) * scale
	}
	return nil
}
