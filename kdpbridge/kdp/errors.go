package kdp

import (
	"errors"
	"fmt"
	"strconv"
)

// Decoding and encoding errors. Errors returned by this package wrap one of
// them (or are an UnknownRequestError), so match them with errors.Is.
var (
	// ErrShortPacket means a datagram is shorter than the header or than the
	// fixed layout of its packet, or a count in it points past its end.
	ErrShortPacket = errors.New("kdp: short packet")
	// ErrBadLength means the header's length field does not equal the
	// datagram's length, or a packet is too large to encode.
	ErrBadLength = errors.New("kdp: bad length")
	// ErrWrongPacket means a datagram is a valid KDP packet but not the kind
	// the caller decodes into (another request code, or a reply where a
	// request was expected).
	ErrWrongPacket = errors.New("kdp: unexpected packet")
	// ErrTooLong means a field value does not fit its fixed-size wire field
	// (a DUMPINFO name or address string).
	ErrTooLong = errors.New("kdp: value too long for its field")
)

// UnknownRequestError is returned when a datagram's request code is not one of
// the 32 codes of protocol version 12.
type UnknownRequestError Request

func (e UnknownRequestError) Error() string {
	return "kdp: unknown request " + strconv.Itoa(int(e))
}

// ErrorCode is the error field (kdp_error_t) of a reply. The zero value means
// success; every other value is an error, so an ErrorCode can be wrapped and
// matched with errors.Is.
type ErrorCode uint32

// The error codes a KDP stub returns.
const (
	NoError                 ErrorCode = 0   // KDPERR_NO_ERROR
	ErrAlreadyConnected     ErrorCode = 1   // KDPERR_ALREADY_CONNECTED
	ErrBadNBytes            ErrorCode = 2   // KDPERR_BAD_NBYTES: more than MaxData bytes asked
	ErrBadFlavor            ErrorCode = 3   // KDPERR_BADFLAVOR: register flavor (or I/O size) not supported
	ErrBadAccess            ErrorCode = 4   // KDPERR_BAD_ACCESS: memory not (fully) accessible
	ErrMaxBreakpoints       ErrorCode = 100 // KDPERR_MAX_BREAKPOINTS: breakpoint table full
	ErrBreakpointNotFound   ErrorCode = 101 // KDPERR_BREAKPOINT_NOT_FOUND
	ErrBreakpointAlreadySet ErrorCode = 102 // KDPERR_BREAKPOINT_ALREADY_SET
)

// Error returns a lower-case description and the XNU name of the code.
func (c ErrorCode) Error() string {
	switch c {
	case NoError:
		return "no error (KDPERR_NO_ERROR)"
	case ErrAlreadyConnected:
		return "another debugger is connected (KDPERR_ALREADY_CONNECTED)"
	case ErrBadNBytes:
		return "byte count too large (KDPERR_BAD_NBYTES)"
	case ErrBadFlavor:
		return "register flavor not supported (KDPERR_BADFLAVOR)"
	case ErrBadAccess:
		return "memory not accessible (KDPERR_BAD_ACCESS)"
	case ErrMaxBreakpoints:
		return "no free breakpoint slot (KDPERR_MAX_BREAKPOINTS)"
	case ErrBreakpointNotFound:
		return "no breakpoint at that address (KDPERR_BREAKPOINT_NOT_FOUND)"
	case ErrBreakpointAlreadySet:
		return "breakpoint already set (KDPERR_BREAKPOINT_ALREADY_SET)"
	}
	return "kdp error " + strconv.FormatUint(uint64(c), 10)
}

// ProtocolError is an error reply from the peer: the request it answered, the
// operation the caller was performing, and the code the peer returned.
// errors.Is(err, kdp.ErrBadAccess) matches through it.
type ProtocolError struct {
	Op      string    // what the caller was doing, e.g. "read 512 bytes at 0xffffff8000200000"
	Request Request   // the request that failed
	Code    ErrorCode // the error field of the reply
}

func (e *ProtocolError) Error() string {
	if e.Op == "" {
		return fmt.Sprintf("kdp %s: %v", e.Request, e.Code)
	}
	return fmt.Sprintf("kdp %s: %s: %v", e.Request, e.Op, e.Code)
}

// Unwrap returns the error code.
func (e *ProtocolError) Unwrap() error { return e.Code }
