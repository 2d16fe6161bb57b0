package h1

import (
	"bytes"
	"fmt"
)

// maxChunkLine bounds a chunk-size line, as net/http's chunked reader does.
const maxChunkLine = 4096

// maxChunk: larger chunk sizes are refused (net/http's reader refuses them
// too, through an overflow in its overhead accounting).
const maxChunk = 1<<62 - 8

// DecodeChunked decodes the chunked body at the start of b (RFC 9112
// §7.1) for a caller that reads the connection itself (the dispatcher's
// event loop): it appends the data of every complete chunk to dst and
// returns it with n, the bytes of b those chunks took. done reports that
// the last chunk and the trailer section were complete too (n then ends
// the body; trailer fields are dropped, as RoundTripRaw drops them).
// Called again with b[n:] when more bytes came, it goes on where it
// stopped. A chunk line must end in CRLF and its size is hex with at most
// 16 digits (extensions after ';' are ignored), as net/http's chunked
// reader requires. Unlike net/http it does not limit the share of chunk
// framing in the body (its "too much non-data" error).
func DecodeChunked(dst, b []byte) (out []byte, n int, done bool, err error) {
	for {
		i := bytes.IndexByte(b[n:], '\n')
		if i < 0 {
			if len(b)-n >= maxChunkLine {
				return dst, n, false, fmt.Errorf("%w: chunk line too long", errMalformed)
			}
			return dst, n, false, nil
		}
		if i+1 >= maxChunkLine {
			return dst, n, false, fmt.Errorf("%w: chunk line too long", errMalformed)
		}
		line := b[n : n+i+1]
		if cr := bytes.IndexByte(line, '\r'); cr < 0 || cr != len(line)-2 {
			return dst, n, false, fmt.Errorf("%w: chunk line %q does not end in CRLF", errMalformed, line)
		}
		line = bytes.TrimRight(line[:len(line)-2], " \t")
		if semi := bytes.IndexByte(line, ';'); semi >= 0 {
			line = line[:semi]
		}
		size, ok := parseHex(line)
		if !ok || size >= maxChunk {
			return dst, n, false, fmt.Errorf("%w: chunk size %q", errMalformed, line)
		}
		start := n + len(b[n:n+i+1])
		if size == 0 {
			// The trailer section: lines up to an empty one.
			p := start
			for lines := 0; ; lines++ {
				if lines > maxHeadLines || p-start > maxHeadBytes {
					return dst, n, false, fmt.Errorf("%w: trailer too long", errMalformed)
				}
				j := bytes.IndexByte(b[p:], '\n')
				if j < 0 {
					return dst, n, false, nil
				}
				l := trimEOL(b[p : p+j+1])
				p += j + 1
				if len(l) == 0 {
					return dst, p, true, nil
				}
			}
		}
		if avail := uint64(len(b) - start); size > avail || avail-size < 2 {
			return dst, n, false, nil
		}
		end := start + int(size)
		if b[end] != '\r' || b[end+1] != '\n' {
			return dst, n, false, fmt.Errorf("%w: chunk data not followed by CRLF", errMalformed)
		}
		dst = append(dst, b[start:end]...)
		n = end + 2
	}
}

// parseHex parses a chunk size as net/http does: 1 to 16 hex digits.
func parseHex(v []byte) (uint64, bool) {
	if len(v) == 0 || len(v) > 16 {
		return 0, false
	}
	var n uint64
	for _, c := range v {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | uint64(c)
	}
	return n, true
}
