package dispatcher

import (
	"bytes"

	"github.com/infadapter/infadapter/pkg/dispatcher/internal/httptok"
)

// reqHead is an HTTP/1.1 request head accepted by the fast server path
// (server.go). parseHead accepts only a strict subset of what net/http's
// server accepts, and reads it the same way (FuzzParseHead checks both
// against http.ReadRequest); everything else — other methods and
// versions, chunked bodies, percent-escapes in the path, folded or
// oversized headers, anything malformed — is left to net/http, which
// serves it or answers 4xx itself. So the fast path never has to decide a
// borderline case differently from net/http (request smuggling lives in
// such differences).
type reqHead struct {
	headLen   int    // bytes of the head, including the empty line
	path      string // the path of the target, as sent (no '%')
	rawQuery  string // after '?', without it
	clen      int64  // Content-Length
	close     bool   // Connection: close
	expect100 bool   // Expect: 100-continue
	// fwd holds the header lines to forward verbatim (CRLF-terminated):
	// every line except Host, Content-Length, Expect, X-Forwarded-For and
	// the hop-by-hop headers.
	fwd []byte
	// xff is the client's X-Forwarded-For values joined by ", ".
	xff []byte
	// binLen is Inference-Header-Content-Length (the OIP v2 binary tensor
	// extension: the body is a JSON header of binLen bytes followed by raw
	// tensor data), −1 when absent. The header is also forwarded.
	binLen int64
}

// maxHeadLines bounds the header lines of a fast-path request (net/http
// bounds the head by bytes only; a longer head is handed to it).
const maxHeadLines = 100

// findHeadEnd returns the length of the head ("...\r\n\r\n") at the start
// of b, or -1 when b holds no complete head yet.
func findHeadEnd(b []byte) int {
	i := bytes.Index(b, crlfcrlf)
	if i < 0 {
		return -1
	}
	return i + 4
}

var crlfcrlf = []byte("\r\n\r\n")

// parseHead parses the complete head b (ending in "\r\n\r\n", as found by
// findHeadEnd) into h, reusing h's buffers. It returns false when the
// request is not for the fast path (see reqHead).
func parseHead(b []byte, h *reqHead) bool {
	h.headLen = len(b)
	h.fwd = h.fwd[:0]
	h.xff = h.xff[:0]
	h.clen, h.close, h.expect100, h.binLen = -1, false, false, -1
	line, rest, ok := cutCRLF(b)
	if !ok {
		return false
	}
	// Request line: exactly "POST <origin-form target> HTTP/1.1".
	target, ok := bytes.CutPrefix(line, []byte("POST "))
	if !ok {
		return false
	}
	target, ok = bytes.CutSuffix(target, []byte(" HTTP/1.1"))
	if !ok || len(target) == 0 || target[0] != '/' {
		return false
	}
	q := -1
	for i, c := range target {
		// Visible ASCII only; '%' in the path (escapes net/http would
		// decode; the query is passed on raw) and '#' are left to net/http.
		if c <= ' ' || c >= 0x7f || c == '#' || c == '%' && q < 0 {
			return false
		}
		if c == '?' && q < 0 {
			q = i
		}
	}
	if q >= 0 {
		h.path, h.rawQuery = string(target[:q]), string(target[q+1:])
	} else {
		h.path, h.rawQuery = string(target), ""
	}
	hosts := 0
	for n := 0; ; n++ {
		line, rest, ok = cutCRLF(rest)
		if !ok || n > maxHeadLines {
			return false
		}
		if len(line) == 0 {
			break
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 {
			return false // also rejects obs-fold (a line starting with SP/HTAB)
		}
		name := line[:colon]
		for _, c := range name {
			if !httptok.IsTokenChar(c) {
				return false
			}
		}
		val := httptok.TrimOWS(line[colon+1:])
		for _, c := range val {
			if c < ' ' && c != '\t' || c == 0x7f {
				return false
			}
		}
		switch {
		case httptok.EqualFold(name, "host"):
			hosts++
			if hosts > 1 || !validHost(val) {
				return false
			}
		case httptok.EqualFold(name, "content-length"):
			if h.clen >= 0 {
				return false // duplicates: net/http's rules differ in detail
			}
			if h.clen = httptok.ParseDigits(val); h.clen < 0 {
				return false
			}
		case httptok.EqualFold(name, "expect"):
			if !httptok.EqualFold(val, "100-continue") || h.expect100 {
				return false
			}
			h.expect100 = true
		case httptok.EqualFold(name, "connection"):
			if !connectionTokens(val, h) {
				return false
			}
		case httptok.EqualFold(name, "transfer-encoding"), httptok.EqualFold(name, "upgrade"):
			return false
		case httptok.EqualFold(name, "inference-header-content-length"):
			if h.binLen >= 0 {
				return false // duplicates: left to net/http's path
			}
			if h.binLen = httptok.ParseDigits(val); h.binLen < 0 {
				return false // not a length: net/http's path answers 400
			}
			h.fwd = append(h.fwd, line...)
			h.fwd = append(h.fwd, '\r', '\n')
		case httptok.EqualFold(name, "x-forwarded-for"):
			if len(h.xff) > 0 {
				h.xff = append(h.xff, ", "...)
			}
			h.xff = append(h.xff, val...)
		case httptok.EqualFold(name, "keep-alive"), httptok.EqualFold(name, "proxy-connection"), httptok.EqualFold(name, "te"),
			httptok.EqualFold(name, "trailer"), httptok.EqualFold(name, "proxy-authenticate"), httptok.EqualFold(name, "proxy-authorization"):
			// hop-by-hop: not forwarded
		default:
			h.fwd = append(h.fwd, line...)
			h.fwd = append(h.fwd, '\r', '\n')
		}
	}
	return hosts == 1 && h.clen >= 0 && len(rest) == 0
}

// cutCRLF splits b at the first "\r\n"; a bare '\r' or '\n' inside the line
// makes it fail (net/http tolerates a bare LF; the fast path does not).
func cutCRLF(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, false
	}
	return line, b[i+1:], true
}

// validHost accepts a conservative subset of Host values: non-empty,
// letters, digits and "-._:[]" (names, IPv4, [IPv6], ports).
func validHost(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-' || c == '.' || c == '_' || c == ':' || c == '[' || c == ']':
		default:
			return false
		}
	}
	return true
}

// connectionTokens accepts a Connection value made of "close" and
// "keep-alive" tokens only (others would name more hop-by-hop headers to
// drop: left to net/http) and records close.
func connectionTokens(v []byte, h *reqHead) bool {
	for len(v) > 0 {
		tok := v
		if i := bytes.IndexByte(v, ','); i >= 0 {
			tok, v = v[:i], v[i+1:]
		} else {
			v = nil
		}
		tok = httptok.TrimOWS(tok)
		switch {
		case httptok.EqualFold(tok, "close"):
			h.close = true
		case httptok.EqualFold(tok, "keep-alive"), len(tok) == 0:
		default:
			return false
		}
	}
	return true
}
