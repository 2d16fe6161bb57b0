// Package httpfast is the fast HTTP/1.1 server path shared by the
// dispatcher (pkg/dispatcher) and the model server (pkg/modelserver):
// Server (accept loop, keep-alive and pipelining, timeouts, Shutdown,
// lingering close) serving a Handler's requests; a strict request head
// parser that reads straight from a connection's read buffer (Head,
// FindHeadEnd, ParseHead); the hand-off of a connection with its buffered
// bytes to a net/http server on the same port (HandoffListener); and a
// cached Date header value. A Handler's answer is buffered and sent with
// a Content-Length (the model server), or streamed into the connection's
// write buffer once its length is known (ResponseWriter.WriteRawHead: the
// dispatcher relays a backend's head and body as they come); answers to
// pipelined requests go out in one write either way.
//
// The idea of both servers: profiles showed most of a small request's CPU
// in net/http's per-request machinery (header maps, a context and a
// background read goroutine per request, response header handling), so
// inference requests — "POST <path> HTTP/1.1" with a Content-Length body —
// take a hand-written path, and every other request (health, metadata,
// chunked bodies, HTTP/1.0, anything malformed) is handed with its
// connection to net/http, which serves or rejects it. ParseHead accepts
// only what net/http would read the same way (FuzzParseHead checks it
// against http.ReadRequest), so the two paths never disagree on where a
// request ends.
package httpfast
