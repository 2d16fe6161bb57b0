//go:build !linux

package modelserver

import (
	"context"
	"errors"
	"net"

	"github.com/infadapter/infadapter/pkg/internal/httpfast"
)

// EventServer is the Linux-only event-loop serving path (see
// evserver_linux.go); elsewhere NewEventServer fails.
type EventServer struct{}

// NewEventServer fails: epoll is Linux-only.
func (s *Server) NewEventServer(httpfast.Options) (*EventServer, error) {
	return nil, errors.New("--event-loop: only on Linux (epoll)")
}

func (*EventServer) Serve(net.Listener) error       { return errors.New("unsupported") }
func (*EventServer) Shutdown(context.Context) error { return nil }
func (*EventServer) Close() error                   { return nil }
