package httpfast

import (
	"bytes"

	"github.com/infadapter/infadapter/pkg/internal/httptok"
)

// Head is an HTTP/1.1 request head accepted by a fast server path (the
// dispatcher's and the model server's). ParseHead accepts only a strict
// subset of what net/http's server accepts, and reads it the same way (FuzzParseHead checks both
// against http.ReadRequest); everything else — other methods and
// versions, chunked bodies, percent-escapes in the path, folded or
// oversized headers, anything malformed — is left to net/http, which
// serves it or answers 4xx itself. So the fast path never has to decide a
// borderline case differently from net/http (request smuggling lives in
// such differences).
type Head struct {
	HeadLen       int    // bytes of the head, including the empty line
	Path          string // the path of the target, as sent (no '%')
	RawQuery      string // after '?', without it
	ContentLength int64  // Content-Length
	Close         bool   // Connection: close
	Expect100     bool   // Expect: 100-continue
	// Fwd holds the header lines to forward verbatim (CRLF-terminated):
	// every line except Host, Content-Length, Expect, X-Forwarded-For and
	// the hop-by-hop headers.
	Fwd []byte
	// XFF is the client's X-Forwarded-For values joined by ", ".
	XFF []byte
	// BinLen is Inference-Header-Content-Length (the OIP v2 binary tensor
	// extension: the body is a JSON header of BinLen bytes followed by raw
	// tensor data), −1 when absent. The header is also forwarded.
	BinLen int64
}

// MaxHeadLines bounds the header lines of a fast-path request (net/http
// bounds the head by bytes only; a longer head is handed to it).
const MaxHeadLines = 100

// FindHeadEnd returns the length of the head ("...\r\n\r\n") at the start
// of b, or -1 when b holds no complete head yet.
func FindHeadEnd(b []byte) int {
	i := bytes.Index(b, crlfcrlf)
	if i < 0 {
		return -1
	}
	return i + 4
}

var crlfcrlf = []byte("\r\n\r\n")

// ParseHead parses the complete head b (ending in "\r\n\r\n", as found by
// FindHeadEnd) into h, reusing h's buffers. It returns false when the
// request is not for the fast path (see Head).
func ParseHead(b []byte, h *Head) bool {
	h.HeadLen = len(b)
	h.Fwd = h.Fwd[:0]
	h.XFF = h.XFF[:0]
	h.ContentLength, h.Close, h.Expect100, h.BinLen = -1, false, false, -1
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
		h.Path, h.RawQuery = string(target[:q]), string(target[q+1:])
	} else {
		h.Path, h.RawQuery = string(target), ""
	}
	hosts, xffs := 0, 0
	for n := 0; ; n++ {
		line, rest, ok = cutCRLF(rest)
		if !ok || n > MaxHeadLines {
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
			if h.ContentLength >= 0 {
				return false // duplicates: net/http's rules differ in detail
			}
			if h.ContentLength = httptok.ParseDigits(val); h.ContentLength < 0 {
				return false
			}
		case httptok.EqualFold(name, "expect"):
			if !httptok.EqualFold(val, "100-continue") || h.Expect100 {
				return false
			}
			h.Expect100 = true
		case httptok.EqualFold(name, "connection"):
			if !connectionTokens(val, h) {
				return false
			}
		case httptok.EqualFold(name, "transfer-encoding"), httptok.EqualFold(name, "upgrade"):
			return false
		case httptok.EqualFold(name, "inference-header-content-length"):
			if h.BinLen >= 0 {
				return false // duplicates: left to net/http's path
			}
			if h.BinLen = httptok.ParseDigits(val); h.BinLen < 0 {
				return false // not a length: net/http's path answers 400
			}
			h.Fwd = append(h.Fwd, line...)
			h.Fwd = append(h.Fwd, '\r', '\n')
		case httptok.EqualFold(name, "x-forwarded-for"):
			if xffs > 0 { // not len(h.XFF) > 0: empty values count too, as in net/http's join
				h.XFF = append(h.XFF, ", "...)
			}
			xffs++
			h.XFF = append(h.XFF, val...)
		case httptok.EqualFold(name, "keep-alive"), httptok.EqualFold(name, "proxy-connection"), httptok.EqualFold(name, "te"),
			httptok.EqualFold(name, "trailer"), httptok.EqualFold(name, "proxy-authenticate"), httptok.EqualFold(name, "proxy-authorization"):
			// hop-by-hop: not forwarded
		default:
			h.Fwd = append(h.Fwd, line...)
			h.Fwd = append(h.Fwd, '\r', '\n')
		}
	}
	return hosts == 1 && h.ContentLength >= 0 && len(rest) == 0
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
func connectionTokens(v []byte, h *Head) bool {
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
			h.Close = true
		case httptok.EqualFold(tok, "keep-alive"), len(tok) == 0:
		default:
			return false
		}
	}
	return true
}
