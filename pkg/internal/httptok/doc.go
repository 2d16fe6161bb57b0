// Package httptok holds byte-level HTTP/1.1 helpers shared by the
// hand-written parsers: the fast-path request head parser
// (pkg/internal/httpfast, used by the dispatcher and the model server) and
// the dispatcher's raw response head reader (pkg/dispatcher/h1). They work
// on []byte without allocating, which is why net/textproto's string-based
// equivalents are not used on those paths.
package httptok
