package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net/http/httputil"
	"strings"
	"testing"
)

func TestDecodeChunked(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		n    int
		done bool
		bad  bool
	}{
		{in: "3\r\nabc\r\n0\r\n\r\nrest", want: "abc", n: 13, done: true},
		{in: "3;ext=1\r\nabc\r\nA\r\n0123456789\r\n0\r\nX-T: 1\r\n\r\n", want: "abc0123456789", n: 42, done: true},
		{in: "3\r\nabc\r\n0\r\n", want: "abc", n: 8}, // trailer not complete yet
		{in: "3\r\nab", n: 0},                      // chunk not complete yet
		{in: "3\r\nabc\r\n4\r", want: "abc", n: 8}, // next line not complete yet
		{in: "3\nabc\r\n0\r\n\r\n", bad: true},     // bare LF
		{in: "3\r\nabcd\r\n0\r\n\r\n", bad: true},  // data longer than the size
		{in: "g\r\nabc\r\n0\r\n\r\n", bad: true},   // not hex
		{in: "\r\n", bad: true},                    // empty size
		{in: "11111111111111111\r\n", bad: true},   // 17 digits
		{in: "ffffffffffffffff\r\nabc", bad: true}, // too large
	} {
		got, n, done, err := DecodeChunked(nil, []byte(tc.in))
		if tc.bad {
			if err == nil {
				t.Errorf("%q: accepted", tc.in)
			}
			continue
		}
		if err != nil || string(got) != tc.want || n != tc.n || done != tc.done {
			t.Errorf("%q: %q, %d, %v, %v; want %q, %d, %v", tc.in, got, n, done, err, tc.want, tc.n, tc.done)
		}
	}
}

// FuzzDecodeChunked: DecodeChunked agrees with net/http's chunked reader
// followed by skipTrailer (RoundTripRaw's decoding) on what a complete
// body is, its data and its length; fed in two parts it decodes the same.
func FuzzDecodeChunked(f *testing.F) {
	for _, s := range []string{
		"3\r\nabc\r\n0\r\n\r\n",
		"3;x=\"y\"\r\nabc\r\n1 \r\nd\r\n0\r\nTrailer: v\r\n\r\nnext",
		"0\r\n\r\n",
		"5\r\nab\r\n\r\n0\r\n\r\n",
		"A\r\n0123456789\r\n0\r\n\n",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		got, n, done, err := DecodeChunked(nil, in)
		rd := bytes.NewReader(in)
		br := bufio.NewReader(rd)
		want, rerr := io.ReadAll(httputil.NewChunkedReader(br))
		if rerr == nil {
			rerr = skipTrailer(br)
		}
		if rerr != nil && strings.Contains(rerr.Error(), "too much non-data") {
			return // a limit DecodeChunked does not have (see its comment)
		}
		consumed := len(in) - br.Buffered() - rd.Len()
		switch {
		case done && err == nil:
			if rerr != nil {
				t.Fatalf("%q: decoded %q, net/http: %v", in, got, rerr)
			}
			if !bytes.Equal(got, want) || n != consumed {
				t.Fatalf("%q: %q (%d bytes), net/http %q (%d bytes)", in, got, n, want, consumed)
			}
		case err == nil:
			// Incomplete: net/http runs out of input too.
			if rerr != nil && !errors.Is(rerr, io.ErrUnexpectedEOF) && !errors.Is(rerr, io.EOF) {
				t.Fatalf("%q: incomplete, net/http: %v", in, rerr)
			}
			if rerr == nil {
				t.Fatalf("%q: incomplete, net/http decoded %q", in, want)
			}
		default:
			if rerr == nil {
				t.Fatalf("%q: %v, net/http decoded %q", in, err, want)
			}
		}
		// Resumed after a split, the result is the same.
		if k := int(cut); k < len(in) {
			part, m, done1, err1 := DecodeChunked(nil, in[:k])
			if done1 && err1 == nil {
				if !done || err != nil || m != n || !bytes.Equal(part, got) {
					t.Fatalf("%q cut at %d: done with %q/%d, whole %q/%d/%v/%v", in, k, part, m, got, n, done, err)
				}
			} else if err1 == nil {
				rest, m2, done2, err2 := DecodeChunked(part, in[m:])
				if (err2 == nil) != (err == nil) || done2 != done || err == nil && (m+m2 != n || !bytes.Equal(rest, got)) {
					t.Fatalf("%q split at %d: %q/%d/%v/%v, whole %q/%d/%v/%v", in, k, rest, m+m2, done2, err2, got, n, done, err)
				}
			}
		}
	})
}
