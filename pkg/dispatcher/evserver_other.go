//go:build !linux

package dispatcher

import (
	"context"
	"errors"
	"net"
)

// EventServer is the event-loop server; it exists on Linux only.
type EventServer struct{}

// ErrNoEventLoop: the event-loop server needs Linux (epoll).
var ErrNoEventLoop = errors.New("the event-loop server needs Linux (epoll)")

// NewEventServer fails off Linux: use NewServer.
func (d *Dispatcher) NewEventServer(ServerOptions, int) (*EventServer, error) {
	return nil, ErrNoEventLoop
}

// Serve is never reached (NewEventServer fails).
func (*EventServer) Serve(net.Listener) error { return ErrNoEventLoop }

// Shutdown does nothing.
func (*EventServer) Shutdown(context.Context) error { return nil }

// Close does nothing.
func (*EventServer) Close() error { return nil }
