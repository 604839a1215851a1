package server

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/lwm2md/lwm2md/objects"
)

// The errors of device management calls. A device's error answer is a
// *CoAPError, which errors.Is matches against the sentinel of its code
// (ErrNotFound for 4.04, and so on); codes without a sentinel are reached
// with errors.As.
var (
	ErrBadRequest        = errors.New("bad request (4.00)")
	ErrUnauthorized      = errors.New("unauthorized (4.01)")
	ErrNotFound          = errors.New("not found (4.04)")
	ErrMethodNotAllowed  = errors.New("method not allowed (4.05)")
	ErrNotAcceptable     = errors.New("not acceptable (4.06)")
	ErrUnsupportedFormat = errors.New("unsupported content format (4.15)")

	// ErrTimeout: no answer before the context's deadline (or the
	// server's RequestTimeout). The error also wraps the context's error.
	ErrTimeout = errors.New("device did not answer in time")
	// ErrNotRegistered: no registration for the endpoint.
	ErrNotRegistered = errors.New("endpoint not registered")
	// ErrClosed: the server is closed or was never started.
	ErrClosed = errors.New("server closed")
	// ErrInvalidRequest: the call itself is wrong (a path of the wrong
	// depth for the operation, a node that does not match the path, bad
	// Execute arguments); nothing was sent.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrNotObserved: the device answered an Observe without an Observe
	// option, so it did not register the observation (RFC 7641 §3.2).
	ErrNotObserved = errors.New("device did not accept the observation")
)

// Code is a CoAP response code, class*32 + detail (4.04 is 132).
type Code uint8

// Class is the code's class: 2 success, 4 client error, 5 server error.
func (c Code) Class() int { return int(c >> 5) }

// String writes the code in the dotted form, "4.04".
func (c Code) String() string {
	d := int(c & 31)
	s := strconv.Itoa(c.Class()) + "."
	if d < 10 {
		s += "0"
	}
	return s + strconv.Itoa(d)
}

// CoAPError is a device's error answer to a request.
type CoAPError struct {
	Op         string // "read", "write", ...
	Endpoint   string
	Path       objects.Path
	Code       Code
	Diagnostic string // the diagnostic payload, when the device sent a readable one
}

func (e *CoAPError) Error() string {
	s := fmt.Sprintf("server: %s %s %s: device answered %s", e.Op, e.Endpoint, e.Path, e.Code)
	if e.Diagnostic != "" {
		s += ": " + strconv.Quote(e.Diagnostic)
	}
	return s
}

// Is matches the sentinel error of the code.
func (e *CoAPError) Is(target error) bool {
	return target != nil && codeErrors[e.Code] == target
}

var codeErrors = map[Code]error{
	0x80: ErrBadRequest,
	0x81: ErrUnauthorized,
	0x84: ErrNotFound,
	0x85: ErrMethodNotAllowed,
	0x86: ErrNotAcceptable,
	0x8f: ErrUnsupportedFormat,
}

// diagnostic keeps a short, printable diagnostic payload (RFC 7252
// §5.5.2) for an error message.
func diagnostic(b []byte) string {
	const max = 200
	if len(b) > max {
		b = b[:max]
		for i := 0; i < utf8.UTFMax-1 && !utf8.Valid(b); i++ {
			b = b[:len(b)-1] // a rune cut by the limit
		}
	}
	if !utf8.Valid(b) {
		return ""
	}
	for _, c := range b {
		if c < 0x20 && c != '\t' {
			return ""
		}
	}
	return string(b)
}
