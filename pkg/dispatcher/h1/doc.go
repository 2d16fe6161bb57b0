// Package h1 is a small HTTP/1.1 keep-alive client: the request is written
// and the response head read on the caller's goroutine, with a hard cap on
// open connections. net/http's Transport hands each request to a
// per-connection writer goroutine and each response to a reader goroutine;
// on a proxy's hot path those two hand-offs (thread wake-ups on a busy
// machine) are most of the added latency. The dispatcher uses it for
// plain-http backends and the load generator for plain-http targets.
// It speaks only what they need: one request at a time per connection, a
// body given as bytes, no 100-continue, no proxies, no TLS. A request that
// fits the write buffer is sent from inside syscall.RawConn.Read's
// callback, so the answer is awaited without the read(2) that net.Conn
// would first try and that could only find nothing (sendwait.go).
package h1
