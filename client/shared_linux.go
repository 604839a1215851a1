package client

import (
	"syscall"
)

// loopbackOnly binds a shared socket to the loopback interface
// (SO_BINDTODEVICE), so that its wildcard address takes no datagram
// from another interface.
func loopbackOnly(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptString(int(fd), syscall.SOL_SOCKET, syscall.SO_BINDTODEVICE, "lo")
	})
	if err != nil {
		return err
	}
	return serr
}
