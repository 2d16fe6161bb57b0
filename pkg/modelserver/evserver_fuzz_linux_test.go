//go:build linux

package modelserver

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/internal/httpfast"
)

// FuzzEventLoopStream writes a keep-alive stream of requests — picked by
// sel from a fixed set (inference on the loop, errors, hand-offs), ended
// by a Connection: close request — in chunks whose sizes come from cuts,
// to the event-loop server and to the goroutine fast server, and checks
// that both answer the same sequence (status, headers but Date, bodies).
// It exercises the loop's buffering (heads and bodies split anywhere,
// pipelining) and the hand-off with buffered bytes.
func FuzzEventLoopStream(f *testing.F) {
	f.Add([]byte{0}, []byte{})
	f.Add([]byte{0, 1, 2}, []byte{1, 7, 200, 3})
	f.Add([]byte{3, 0, 4, 0}, []byte{50, 50, 50})
	f.Add([]byte{5, 6, 0, 7}, []byte{255, 1, 2, 3, 4, 5})
	f.Fuzz(func(t *testing.T, sel, cuts []byte) {
		if len(sel) > 8 || len(cuts) > 64 {
			t.Skip("bounded input")
		}
		ev, fast := fuzzServers(t)
		good := v2Body([]int64{1, 784}, image(0.5))
		bin, hlen := binaryBody([]int64{1, 784}, image(0.25), true)
		set := []string{
			rawPost("/v2/models/cnn-s/infer", good),
			rawPost("/v2/models/cnn-s/infer", `{"inputs":[`),
			rawPost("/v2/models/cnn-s/infer", string(bin), fmt.Sprintf("Inference-Header-Content-Length: %d", hlen)),
			"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n",
			rawPost("/v2/models/other/infer", good),
			rawPost("/v1/models/cnn-s:predict", `{"instances":[[1,2]]}`),
			"POST /v2/models/cnn-s/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
				fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(good), good),
			rawPost("/v2/models/cnn-s/infer", string(bin), "Inference-Header-Content-Length: 99999"),
		}
		var stream strings.Builder
		for _, b := range sel {
			stream.WriteString(set[int(b)%len(set)])
		}
		stream.WriteString(rawPost("/v2/models/cnn-s/infer", good, "Connection: close"))
		a, b := streamAnswers(t, ev, stream.String(), cuts), streamAnswers(t, fast, stream.String(), cuts)
		if a != b {
			t.Fatalf("sel %v cuts %v:\nevent loop %q\nfast       %q", sel, cuts, a, b)
		}
		if n := strings.Count(a, "\n--\n"); n != len(sel)+1 {
			t.Fatalf("sel %v: %d answers, want %d:\n%q", sel, n, len(sel)+1, a)
		}
	})
}

var fuzzAddrs struct{ ev, fast string }

// fuzzServers starts the two servers once per process (the model load
// is too slow for every input); they live until the process ends.
func fuzzServers(t *testing.T) (string, string) {
	t.Helper()
	if fuzzAddrs.ev == "" {
		needORT(t)
		m, err := LoadModel(ModelConfig{Path: filepath.Join(modelsDir(), "cnn-s.onnx"), Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewServer(Config{Name: "cnn-s", MaxBatch: 4, MaxBodyBytes: 1 << 20}, m)
		if err != nil {
			t.Fatal(err)
		}
		s.SetReady(true)
		lnE, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lnF, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		es, err := s.NewEventServer(httpfast.Options{})
		if err != nil {
			t.Fatal(err)
		}
		go func() { _ = es.Serve(lnE) }()
		go func() { _ = s.NewHTTPServer(httpfast.Options{}).Serve(lnF) }()
		fuzzAddrs.ev, fuzzAddrs.fast = lnE.Addr().String(), lnF.Addr().String()
	}
	return fuzzAddrs.ev, fuzzAddrs.fast
}

// streamAnswers writes stream to addr in chunks (sizes from cuts, the
// rest at once) and reads answers until the server closes.
func streamAnswers(t *testing.T, addr, stream string, cuts []byte) string {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	go func() {
		rest := stream
		for _, n := range cuts {
			k := min(int(n)+1, len(rest))
			if _, err := io.WriteString(c, rest[:k]); err != nil {
				return
			}
			rest = rest[k:]
			time.Sleep(100 * time.Microsecond)
		}
		_, _ = io.WriteString(c, rest)
	}()
	br := bufio.NewReader(c)
	var out bytes.Buffer
	for {
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			if err != io.EOF {
				fmt.Fprintf(&out, "error %v", err)
			}
			return out.String()
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Header.Del("Date")
		fmt.Fprintf(&out, "%d\n", resp.StatusCode)
		_ = resp.Header.Write(&out)
		out.Write(body)
		out.WriteString("\n--\n")
		if resp.Close {
			return out.String()
		}
	}
}
