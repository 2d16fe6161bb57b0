package h1

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"

	"github.com/infadapter/infadapter/pkg/internal/httptok"
)

// RawResponse is a response read by RoundTripRaw without building an
// http.Response: the header stays as the lines the server sent, ready to
// be written on to a client. A proxy that only relays the answer saves
// net/http's header map, its canonicalised keys and value strings — about
// a tenth of the dispatcher's CPU per request when it used ReadResponse.
type RawResponse struct {
	StatusCode int
	// Status is the status line's reason phrase, e.g. "OK".
	Status []byte
	// Header holds the header lines, each "Name: value\r\n" as received,
	// except hop-by-hop ones (Connection, Keep-Alive, Transfer-Encoding,
	// …), Content-Length and the names in Request.DropResponseHeaders.
	Header []byte
	// HasDate reports a Date line among Header.
	HasDate bool
	// ContentLength is the body's length, or -1 when the server sends it
	// chunked or until it closes the connection.
	ContentLength int64
	// Body reads the body (decoded when chunked); it must be closed, which
	// returns the connection to the pool once the body was read to its end.
	Body io.ReadCloser

	body rawBody
}

// Limits on a response head, like net/http's client's.
const (
	maxHeadBytes = 1 << 20
	maxHeadLines = 1000
)

// RoundTripRaw sends req and reads the response head into resp (whose
// buffers it reuses); resp.Body must be closed. Errors and retries on
// stale connections are as RoundTrip's.
func (p *Pool) RoundTripRaw(ctx context.Context, req Request, resp *RawResponse) error {
	for attempt := 0; ; attempt++ {
		pc, reused, err := p.get(ctx)
		if err != nil {
			return err
		}
		err = p.exchangeRaw(ctx, pc, reused, &req, resp)
		if errors.Is(err, ErrStale) && attempt <= cap(p.slots) {
			continue
		}
		return err
	}
}

func (p *Pool) exchangeRaw(ctx context.Context, pc *pconn, reused bool, req *Request, resp *RawResponse) error {
	stop := p.arm(ctx, pc)
	fail := func(err error, stale bool) error {
		_, err = p.fail(ctx, pc, stop, reused && stale, err)
		return err
	}
	if err := pc.send(p.host, req); err != nil {
		return fail(err, true)
	}
	reuse, chunked, err := readRawHead(pc.br, req, resp)
	if err != nil {
		return fail(err, false)
	}
	b := &resp.body
	*b = rawBody{pc: pc, pool: p, stop: stop, reuse: reuse, remaining: resp.ContentLength}
	switch {
	case chunked:
		b.chunked = httputil.NewChunkedReader(pc.br)
	case resp.ContentLength < 0:
		b.reuse = false // read until the server closes
	}
	resp.Body = b
	return nil
}

var errMalformed = errors.New("malformed HTTP response")

// readRawHead parses a response head from br into resp. reuse: the
// connection may carry another request after the body.
func readRawHead(br *bufio.Reader, req *Request, resp *RawResponse) (reuse, chunked bool, err error) {
	total := 0
	return parseRawHead(func() ([]byte, error) {
		line, err := br.ReadSlice('\n')
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, fmt.Errorf("%w: header line longer than %d bytes", errMalformed, br.Size())
			}
			return nil, err
		}
		if total += len(line); total > maxHeadBytes {
			return nil, fmt.Errorf("%w: head larger than %d bytes", errMalformed, maxHeadBytes)
		}
		return line, nil
	}, req.Method, req.DropResponseHeaders, resp)
}

// ErrIncomplete: ParseRawHead found no complete head in its input yet.
var ErrIncomplete = errors.New("incomplete HTTP response head")

// ParseRawHead parses the response head at the start of b into resp (as
// RoundTripRaw reads it from a connection; resp.Body is left alone), for
// a caller that reads the connection itself (the dispatcher's event
// loop). n is the head's length; reuse: the connection may carry another
// request after the body; chunked: the body is chunked (resp.ContentLength
// is then -1, as it is for a body that ends when the server closes). It
// returns ErrIncomplete when b ends before the head does and is not
// already too large.
func ParseRawHead(b []byte, method string, drop []string, resp *RawResponse) (n int, reuse, chunked bool, err error) {
	reuse, chunked, err = parseRawHead(func() ([]byte, error) {
		i := bytes.IndexByte(b[n:], '\n')
		if i < 0 {
			if len(b) > maxHeadBytes {
				return nil, fmt.Errorf("%w: head larger than %d bytes", errMalformed, maxHeadBytes)
			}
			return nil, ErrIncomplete
		}
		line := b[n : n+i+1]
		if n += i + 1; n > maxHeadBytes {
			return nil, fmt.Errorf("%w: head larger than %d bytes", errMalformed, maxHeadBytes)
		}
		return line, nil
	}, method, drop, resp)
	return n, reuse, chunked, err
}

// parseRawHead parses a response head, line by line from readLine (each
// line with its LF), into resp.
func parseRawHead(readLine func() ([]byte, error), method string, drop []string, resp *RawResponse) (reuse, chunked bool, err error) {
	resp.Header = resp.Header[:0]
	resp.Status = resp.Status[:0]
	resp.HasDate = false
	resp.ContentLength = -1
	{ // the status line (a 1xx answer is returned like any other, as http.ReadResponse does)
		line, err := readLine()
		if err != nil {
			return false, false, err
		}
		// "HTTP/1.x SSS[ reason]"
		line = trimEOL(line)
		if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/1.")) || (line[7] != '0' && line[7] != '1') || line[8] != ' ' ||
			len(line) > 12 && line[12] != ' ' {
			return false, false, fmt.Errorf("%w: status line %q", errMalformed, line)
		}
		code := 0
		for _, c := range line[9:12] {
			if c < '0' || c > '9' {
				return false, false, fmt.Errorf("%w: status line %q", errMalformed, line)
			}
			code = code*10 + int(c-'0')
		}
		if code < 100 {
			return false, false, fmt.Errorf("%w: status line %q", errMalformed, line)
		}
		reuse = line[7] == '1'
		resp.StatusCode = code
		if len(line) > 13 {
			resp.Status = append(resp.Status, line[13:]...)
		}
	}
	var clSeen bool
	for n := 0; ; n++ {
		line, err := readLine()
		if err != nil {
			return false, false, err
		}
		if n > maxHeadLines {
			return false, false, fmt.Errorf("%w: more than %d header lines", errMalformed, maxHeadLines)
		}
		kv := trimEOL(line)
		if len(kv) == 0 {
			break
		}
		colon := bytes.IndexByte(kv, ':')
		if colon <= 0 {
			return false, false, fmt.Errorf("%w: header line %q", errMalformed, kv)
		}
		name, val := kv[:colon], httptok.TrimOWS(kv[colon+1:])
		for _, c := range name {
			if !httptok.IsTokenChar(c) {
				return false, false, fmt.Errorf("%w: header name %q", errMalformed, name)
			}
		}
		for _, c := range val {
			if c < ' ' && c != '\t' || c == 0x7f {
				return false, false, fmt.Errorf("%w: control character in header %s", errMalformed, name)
			}
		}
		switch {
		case httptok.EqualFold(name, "content-length"):
			cl := httptok.ParseDigits(val)
			if cl < 0 || clSeen && cl != resp.ContentLength {
				return false, false, fmt.Errorf("%w: Content-Length %q", errMalformed, val)
			}
			clSeen, resp.ContentLength = true, cl
			continue
		case httptok.EqualFold(name, "transfer-encoding"):
			if !httptok.EqualFold(val, "chunked") || chunked {
				return false, false, fmt.Errorf("%w: Transfer-Encoding %q", errMalformed, val)
			}
			chunked = true
			continue
		case httptok.EqualFold(name, "connection"):
			reuse = reuse && !httptok.HasToken(val, "close")
			continue
		case httptok.EqualFold(name, "keep-alive"), httptok.EqualFold(name, "proxy-connection"), httptok.EqualFold(name, "te"),
			httptok.EqualFold(name, "trailer"), httptok.EqualFold(name, "upgrade"), httptok.EqualFold(name, "proxy-authenticate"):
			continue
		case httptok.EqualFold(name, "date"):
			resp.HasDate = true
		}
		if dropped(drop, name) {
			continue
		}
		resp.Header = append(resp.Header, name...)
		resp.Header = append(resp.Header, ": "...)
		resp.Header = append(resp.Header, val...)
		resp.Header = append(resp.Header, '\r', '\n')
	}
	if chunked {
		resp.ContentLength = -1 // Transfer-Encoding wins (RFC 9112 §6.3)
		reuse = reuse && !clSeen
	}
	if resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified ||
		resp.StatusCode < 200 || method == http.MethodHead {
		resp.ContentLength, chunked = 0, false
	}
	return reuse, chunked, nil
}

func dropped(names []string, name []byte) bool {
	for _, n := range names {
		if httptok.EqualFold(name, n) {
			return true
		}
	}
	return false
}

func trimEOL(b []byte) []byte {
	b = bytes.TrimSuffix(b, []byte("\n"))
	return bytes.TrimSuffix(b, []byte("\r"))
}

// rawBody reads a RawResponse's body from the pooled connection.
type rawBody struct {
	pc        *pconn
	pool      *Pool
	stop      func() bool
	reuse     bool
	remaining int64     // Content-Length left; -1: chunked or until EOF
	chunked   io.Reader // decodes a chunked body; nil otherwise
	eof, done bool
}

func (b *rawBody) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	switch {
	case b.chunked != nil:
		n, err := b.chunked.Read(p)
		if err == io.EOF {
			// The last chunk: skip the trailer section up to its empty line.
			if terr := skipTrailer(b.pc.br); terr != nil {
				return n, terr
			}
			b.eof = true
		}
		return n, err
	case b.remaining >= 0:
		if b.remaining == 0 {
			b.eof = true
			return 0, io.EOF
		}
		if int64(len(p)) > b.remaining {
			p = p[:b.remaining]
		}
		n, err := b.pc.br.Read(p)
		b.remaining -= int64(n)
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		if err == nil && b.remaining == 0 {
			b.eof = true
			err = io.EOF
		}
		return n, err
	default:
		n, err := b.pc.br.Read(p)
		if err == io.EOF {
			b.eof = true
		}
		return n, err
	}
}

// WriteTo copies a Content-Length body straight from the connection's
// buffer (no intermediate copy buffer).
func (b *rawBody) WriteTo(w io.Writer) (int64, error) {
	if b.chunked != nil || b.remaining < 0 || b.eof {
		return io.Copy(w, struct{ io.Reader }{b})
	}
	n, err := io.CopyN(w, b.pc.br, b.remaining)
	b.remaining -= n
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	if b.remaining == 0 {
		b.eof = true
	}
	return n, err
}

func skipTrailer(br *bufio.Reader) error {
	for n := 0; n < maxHeadLines; n++ {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(trimEOL(line)) == 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: trailer too long", errMalformed)
}

func (b *rawBody) Close() error {
	if b.done {
		return nil
	}
	b.done = true
	if !b.eof && b.remaining > 0 && b.remaining <= 4<<10 {
		// Drain a short unread tail so it does not cost the connection.
		_, _ = b.WriteTo(io.Discard)
	}
	stopped := b.stop() // false: the context fired and poisoned the deadline
	if b.reuse && b.eof && stopped {
		b.pool.put(b.pc)
	} else {
		b.pool.discard(b.pc)
	}
	return nil
}
