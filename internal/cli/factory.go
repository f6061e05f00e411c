package cli

import (
	"io"
	"os"
)

// IOStreams are the command's standard streams, injected so tests capture them.
type IOStreams struct {
	In     io.Reader
	Out    io.Writer
	ErrOut io.Writer
	// ErrIsTerminal reports whether ErrOut is a terminal (progress lines are
	// drawn only then).
	ErrIsTerminal bool
}

// Factory carries what every command needs: streams and the way targets are
// opened.
type Factory struct {
	IO IOStreams
	// Open opens the target named by the options. Tests replace it.
	Open func(o *TargetOptions) (*Session, error)
}

// NewFactory returns a Factory on the process's real streams.
func NewFactory() *Factory {
	return &Factory{
		IO: IOStreams{
			In:            os.Stdin,
			Out:           os.Stdout,
			ErrOut:        os.Stderr,
			ErrIsTerminal: isTerminal(os.Stderr),
		},
		Open: openTarget,
	}
}

// isTerminal reports whether f is a character device (a terminal).
func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
