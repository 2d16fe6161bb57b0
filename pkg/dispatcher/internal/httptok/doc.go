// Package httptok holds the byte-level HTTP/1.1 helpers that both of the
// dispatcher's hand-written parsers use: the fast-path request head parser
// (pkg/dispatcher) and the raw response head reader (pkg/dispatcher/h1).
// They work on []byte without allocating, which is why net/textproto's
// string-based equivalents are not used on those paths.
package httptok
