package httpfast

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
)

const inferBody = `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`

func rawReq(path, body string, extra ...string) string {
	h := "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	for _, e := range extra {
		h += e + "\r\n"
	}
	return h + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}

// parseRawHeader parses CRLF-terminated header lines (Head.Fwd).
func parseRawHeader(raw []byte) (http.Header, error) {
	tr := textproto.NewReader(bufio.NewReader(io.MultiReader(bytes.NewReader(raw), strings.NewReader("\r\n"))))
	h, err := tr.ReadMIMEHeader()
	return http.Header(h), err
}

var headSeeds = []string{
	rawReq("/v2/models/m/infer", inferBody),
	rawReq("/v1/models/m:predict?x=1&y=%20", `{"instances":[[1]]}`, "X-Forwarded-For: 10.0.0.1", "x-forwarded-for: 10.0.0.2", "Connection: keep-alive, close"),
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: +2\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n folded\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.0\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
	"POST /v2/models/m%2Fx/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.1\nHost: x\nContent-Length: 2\n\n{}",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\nContent-Length: 2\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\nContent-Length: 2\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n{}",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: h2c\r\nContent-Length: 2\r\n\r\n{}",
	"POST http://x/v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}",
	"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n",
	"POST  /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"POST /v2/models/m/infer HTTP/1.1\r\nHost: x\r\nKeep-Alive: 5\r\nTE: trailers\r\nContent-Length:2 \r\n\r\n{}",
}

func TestParseHeadCases(t *testing.T) {
	tests := []struct {
		in   string
		fast bool
	}{
		{headSeeds[0], true},
		{headSeeds[1], true},
		{headSeeds[2], false}, // chunked
		{headSeeds[3], false}, // duplicate Content-Length
		{headSeeds[4], false}, // "+2"
		{headSeeds[5], false}, // obs-fold
		{headSeeds[6], false}, // no Host
		{headSeeds[7], false}, // HTTP/1.0
		{headSeeds[8], false}, // %-escape in the path
		{headSeeds[9], false}, // bare LF
		{headSeeds[10], false},
		{headSeeds[11], false},
		{headSeeds[12], true}, // Expect: 100-continue
		{headSeeds[13], false},
		{headSeeds[14], false}, // absolute-form target
		{headSeeds[15], false}, // GET
		{headSeeds[16], false},
		{headSeeds[17], false}, // Content-Length overflow
		{headSeeds[18], true},  // hop-by-hop headers dropped, OWS trimmed
	}
	var h Head
	for i, tc := range tests {
		b := []byte(tc.in)
		n := FindHeadEnd(b)
		got := n >= 0 && ParseHead(b[:n], &h)
		if got != tc.fast {
			t.Errorf("case %d %.50q: fast path %v, want %v", i, tc.in, got, tc.fast)
		}
	}
	b := []byte(headSeeds[1])
	if !ParseHead(b[:FindHeadEnd(b)], &h) {
		t.Fatal("seed 1 rejected")
	}
	if h.Path != "/v1/models/m:predict" || h.RawQuery != "x=1&y=%20" || !h.Close || string(h.XFF) != "10.0.0.1, 10.0.0.2" ||
		string(h.Fwd) != "Content-Type: application/json\r\n" || h.ContentLength != int64(len(`{"instances":[[1]]}`)) {
		t.Errorf("parsed %+v (fwd %q, xff %q)", h, h.Fwd, h.XFF)
	}
}

// FuzzParseHead: whatever the fast path accepts, net/http's server parser
// accepts too and reads the same way (method, path, query, body length,
// Connection: close, head length, forwarded headers).
func FuzzParseHead(f *testing.F) {
	for _, s := range headSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		n := FindHeadEnd(in)
		if n < 0 {
			return
		}
		var h Head
		if !ParseHead(in[:n], &h) {
			return
		}
		br := bufio.NewReader(bytes.NewReader(in))
		r, err := http.ReadRequest(br)
		if err != nil {
			t.Fatalf("fast path accepted %q; net/http: %v", in, err)
		}
		if consumed := len(in) - br.Buffered(); consumed != n {
			t.Fatalf("%q: head of %d bytes, net/http read %d", in, n, consumed)
		}
		if r.Method != "POST" || r.URL.Path != h.Path || r.URL.RawQuery != h.RawQuery || r.ContentLength != h.ContentLength ||
			r.Close != h.Close || r.Header.Get("Expect") != "" != h.Expect100 {
			t.Fatalf("%q: fast %+v; net/http %s %q %q len %d close %v", in, h, r.Method, r.URL.Path, r.URL.RawQuery, r.ContentLength, r.Close)
		}
		if vs := r.Header.Values("Inference-Header-Content-Length"); h.BinLen >= 0 {
			if n, err := strconv.ParseInt(strings.Join(vs, ","), 10, 64); err != nil || n != h.BinLen {
				t.Fatalf("%q: Inference-Header-Content-Length %d, net/http has %q", in, h.BinLen, vs)
			}
		} else if len(vs) > 0 {
			t.Fatalf("%q: Inference-Header-Content-Length %q not read", in, vs)
		}
		if got, want := string(h.XFF), strings.Join(r.Header.Values("X-Forwarded-For"), ", "); got != want {
			t.Fatalf("%q: X-Forwarded-For %q, net/http %q", in, got, want)
		}
		fwd, err := parseRawHeader(h.Fwd)
		if err != nil {
			t.Fatalf("%q: forwarded lines %q do not parse: %v", in, h.Fwd, err)
		}
		for k, vs := range r.Header {
			if skipForward(k) {
				if len(fwd[k]) > 0 {
					t.Fatalf("%q: %s forwarded", in, k)
				}
				continue
			}
			if fmt.Sprint(fwd[k]) != fmt.Sprint(vs) {
				t.Fatalf("%q: forwards %s: %q, net/http has %q", in, k, fwd[k], vs)
			}
		}
	})
}

func skipForward(k string) bool {
	switch k {
	case "Host", "Content-Length", "Expect", "Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
		"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade", "X-Forwarded-For":
		return true
	}
	return false
}
