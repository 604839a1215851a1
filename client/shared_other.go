//go:build !linux

package client

import (
	"fmt"
	"os"
	"syscall"
)

// errSharedUnsupported is returned where shared sockets cannot work.
var errSharedUnsupported = fmt.Errorf("client: shared sockets need Linux (SO_BINDTODEVICE, IP_PKTINFO): %w", os.ErrInvalid)

func loopbackOnly(_, _ string, _ syscall.RawConn) error { return errSharedUnsupported }
