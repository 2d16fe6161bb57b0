package modelserver

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/internal/httpfast"
	"github.com/infadapter/infadapter/pkg/oip"
)

func rawPost(path, body string, extra ...string) string {
	h := "POST " + path + " HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
	for _, e := range extra {
		h += e + "\r\n"
	}
	return h + fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + body
}

// fastServer serves s with the fast path on a loopback port.
func fastServer(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := s.NewHTTPServer(httpfast.Options{})
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return ln.Addr().String()
}

type rawConn struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	return &rawConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (rc *rawConn) send(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatal(err)
	}
}

// expect reads one response and checks its status and that the body holds want.
func (rc *rawConn) expect(what string, code int, want string) *http.Response {
	rc.t.Helper()
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		rc.t.Fatalf("%s: %v", what, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != code || !strings.Contains(string(body), want) {
		rc.t.Fatalf("%s: %d %s, want %d with %q", what, resp.StatusCode, body, code, want)
	}
	if resp.ContentLength != int64(len(body)) {
		rc.t.Fatalf("%s: Content-Length %d, body %d bytes", what, resp.ContentLength, len(body))
	}
	return resp
}

// TestFastConnection drives one raw keep-alive connection through the
// fast path: pipelined requests (good, malformed, wrong model), Expect:
// 100-continue, binary tensor data, a request only net/http serves (the
// hand-off) and inference after it, then Connection: close.
func TestFastConnection(t *testing.T) {
	s, _ := newTestServer(t, "linear")
	s.SetReady(true)
	for path, want := range map[string]bool{"/v2/models/linear/infer": true, "/v1/models/linear:predict": true,
		"/v2/models/other/infer": false, "/v2/models/linear": false, "/v2/health/ready": false, "/metrics": false} {
		if got := s.Fast(&httpfast.Head{Path: path}); got != want {
			t.Errorf("Fast(%s) = %v, want %v", path, got, want)
		}
	}
	rc := dialRaw(t, fastServer(t, s))
	good := v2Body([]int64{1, 784}, image(1))
	rc.send(rawPost("/v2/models/linear/infer", good) + rawPost("/v2/models/linear/infer", `{"inputs":[`) +
		rawPost("/v2/models/nope/infer", good) + rawPost("/v1/models/linear:predict", `{"instances":[[1,2]]}`))
	if r := rc.expect("pipelined good", 200, `"model_name":"linear"`); r.Header.Get("Content-Type") != "application/json" ||
		r.Header.Get("X-Infadapter-Variant") != "linear" || r.Header.Get("Date") == "" || r.Close {
		t.Errorf("pipelined good: header %v, close %v", r.Header, r.Close)
	}
	rc.expect("pipelined malformed", 400, `"error"`)
	rc.expect("pipelined unknown model (net/http's answer)", 404, "not found")
	// The connection is with net/http now: it keeps serving.
	rc.expect("predict with a short example", 400, "example 0 has 2 values")
	rc.send(rawPost("/v2/models/linear/infer", good))
	rc.expect("after the hand-off", 200, `"outputs"`)

	rc = dialRaw(t, fastServer(t, s))
	rc.send(strings.TrimSuffix(rawPost("/v2/models/linear/infer", good, "Expect: 100-continue"), good))
	if line, err := rc.br.ReadString('\n'); err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("100-continue: %q %v", line, err)
	}
	if line, _ := rc.br.ReadString('\n'); line != "\r\n" {
		t.Fatalf("100-continue: %q", line)
	}
	rc.send(good)
	rc.expect("after 100-continue", 200, `"outputs"`)
	bin, hlen := binaryBody([]int64{1, 784}, image(1), true)
	rc.send(rawPost("/v2/models/linear/infer", string(bin), fmt.Sprintf("Inference-Header-Content-Length: %d", hlen)))
	if r := rc.expect("binary", 200, `"binary_data_size":40`); r.Header.Get(HeaderBinaryLength) == "" {
		t.Errorf("binary: no %s in %v", HeaderBinaryLength, r.Header)
	}
	rc.send(rawPost("/v2/models/linear/infer", string(bin), "Inference-Header-Content-Length: 99999"))
	rc.expect("binary, header length past the body", 400, "Inference-Header-Content-Length")
	rc.send(rawPost("/v2/models/linear/infer", good, "Connection: close"))
	if r := rc.expect("close", 200, `"outputs"`); !r.Close {
		t.Error("Connection: close not answered with close")
	}
	if _, err := rc.br.ReadByte(); err != io.EOF {
		t.Errorf("after Connection: close: %v, want EOF", err)
	}

	// Too large: 413 before the body is read, then the connection closes.
	s2, err := NewServer(Config{Name: "linear", MaxBodyBytes: 100}, s.model)
	if err != nil {
		t.Fatal(err)
	}
	s2.SetReady(true)
	rc = dialRaw(t, fastServer(t, s2))
	rc.send(strings.TrimSuffix(rawPost("/v2/models/linear/infer", good), good))
	if r := rc.expect("too large", 413, "limit of 100 bytes"); !r.Close {
		t.Error("413 without Connection: close")
	}
}

// TestFastMatchesStd sends the same requests to the fast path and to
// net/http's server and checks the same status, body and headers come back
// (Date aside).
func TestFastMatchesStd(t *testing.T) {
	s, _ := newTestServer(t, "linear")
	s.SetReady(true)
	fast := fastServer(t, s)
	hs := httptest.NewServer(s)
	t.Cleanup(hs.Close)
	std := strings.TrimPrefix(hs.URL, "http://")
	good := v2Body([]int64{1, 784}, image(1))
	bin, hlen := binaryBody([]int64{1, 784}, image(0.5), true)
	binJSONOut, hlen2 := binaryBody([]int64{1, 1, 28, 28}, image(0.5), false)
	reqs := []string{
		rawPost("/v2/models/linear/infer", good),
		rawPost("/v2/models/linear/infer", v2Body([]int64{2, 1, 28, 28}, append(image(1), image(2)...))),
		rawPost("/v2/models/linear/infer", `{"id":"x\u00e9","inputs":[{"name":"input","shape":[784],"datatype":"FP64","data":`+strings.Repeat("[", 1)+strings.TrimSuffix(strings.Repeat("0.5,", 784), ",")+`]}]}`),
		rawPost("/v2/models/linear/infer", `{"inputs":[`),
		rawPost("/v2/models/linear/infer", `{"inputs":[{"name":"input","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`),
		rawPost("/v2/models/linear/infer", `{"inputs":[{"name":"input","shape":[1,784],"datatype":"BYTES","data":["a"]}]}`),
		rawPost("/v2/models/linear/infer", good[:len(good)-2]+`],"outputs":[{"name":"nope"}]}`),
		rawPost("/v2/models/linear/infer", string(bin), fmt.Sprintf("Inference-Header-Content-Length: %d", hlen)),
		rawPost("/v2/models/linear/infer", string(binJSONOut), fmt.Sprintf("Inference-Header-Content-Length: %d", hlen2)),
		rawPost("/v2/models/linear/infer", string(bin), "Inference-Header-Content-Length: 0"),
		rawPost("/v2/models/linear/infer", string(bin), fmt.Sprintf("Inference-Header-Content-Length: %d", len(bin)+1)),
		rawPost("/v1/models/linear:predict", fmt.Sprintf(`{"instances":[[%s]]}`, strings.TrimSuffix(strings.Repeat("1,", 784), ","))),
		rawPost("/v1/models/linear:predict", `{"instances":[[1,2]]}`),
		rawPost("/v1/models/linear:predict", `{"inputs":{"x":1}}`),
		rawPost("/v2/models/linear/infer", ""),
	}
	for i, req := range reqs {
		a, b := roundTrip(t, fast, req), roundTrip(t, std, req)
		if a != b {
			t.Errorf("request %d %.80q:\nfast %q\nstd  %q", i, req, a, b)
		}
	}
}

// roundTrip sends one request on a new connection and returns the answer
// as "status header... body" with the headers that may differ dropped.
func roundTrip(t *testing.T, addr, req string) string {
	t.Helper()
	rc := dialRaw(t, addr)
	rc.send(req)
	resp, err := http.ReadResponse(rc.br, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Header.Del("Date")
	var hdr bytes.Buffer
	_ = resp.Header.Write(&hdr)
	return fmt.Sprintf("%d\n%s\n%s", resp.StatusCode, hdr.String(), body)
}

// TestConcurrentRequestsOneWorker: many connections at once on a
// one-worker model (requests then wait for the worker slot) all get their
// own answer, the slot is free afterwards, and a request whose client
// gave up while queued does not keep it.
func TestConcurrentRequestsOneWorker(t *testing.T) {
	m := loadModel(t, "cnn-s", 1)
	s, err := NewServer(Config{Name: "cnn-s"}, m)
	if err != nil {
		t.Fatal(err)
	}
	s.SetReady(true)
	url := "http://" + fastServer(t, s) + "/v2/models/cnn-s/infer"
	const n = 24
	errs := make(chan error, n)
	for i := range n {
		go func() {
			img := image(float32(i%4) / 3)
			want, err := m.Infer(context.Background(), img, nil)
			if err != nil {
				errs <- err
				return
			}
			resp, err := http.Post(url, "application/json", strings.NewReader(v2Body([]int64{1, 784}, img)))
			if err != nil {
				errs <- err
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			r, err := oip.DecodeInferResponse(body)
			if resp.StatusCode != 200 || err != nil {
				errs <- fmt.Errorf("%d %v %s", resp.StatusCode, err, body)
				return
			}
			got, _ := r.Outputs[0].Float32s()
			if len(got) != len(want) || got[0] != want[0] || got[len(got)-1] != want[len(want)-1] {
				errs <- fmt.Errorf("image %d: %v, want %v", i%4, got, want)
				return
			}
			errs <- nil
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	if len(s.slots) != 0 {
		t.Errorf("%d slots held after all answers", len(s.slots))
	}
	// net/http's path: a client gone while queued leaves no slot held.
	s.slots <- struct{}{} // the one worker slot is taken
	ctx, cancel := context.WithCancel(context.Background())
	rec := httptest.NewRecorder()
	req := httptest.NewRequestWithContext(ctx, "POST", "/v2/models/cnn-s/infer", strings.NewReader(v2Body([]int64{1, 784}, image(1))))
	done := make(chan struct{})
	go func() { s.ServeHTTP(rec, req); close(done) }()
	cancel()
	<-done
	<-s.slots
	if len(s.slots) != 0 {
		t.Errorf("%d slots held after a cancelled request", len(s.slots))
	}
}
