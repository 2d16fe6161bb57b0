// Package testnet holds a test helper shared by several packages' tests:
// a bare TCP server for answers net/http would not write (interim
// answers, malformed or arbitrary bytes, connections closed mid-way).
package testnet

import (
	"bufio"
	"net"
	"testing"
)

// Serve listens on a loopback port (closed at the end of the test), runs
// serve on each accepted connection in its own goroutine and closes the
// connection when serve returns; it returns the address.
func Serve(tb testing.TB, serve func(c net.Conn, br *bufio.Reader)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c, bufio.NewReader(c))
			}()
		}
	}()
	return ln.Addr().String()
}
