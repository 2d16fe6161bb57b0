package modelserver

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/infadapter/infadapter/pkg/internal/httpfast"
	"github.com/infadapter/infadapter/pkg/oip"
)

// needORT skips without the ONNX Runtime library, but fails in CI, which installs it.
func needORT(t testing.TB) {
	t.Helper()
	if _, err := LocateLibrary(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
}

func modelsDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "third_party", "models", "fmnist")
}

func loadModel(t testing.TB, name string, workers int) *Model {
	t.Helper()
	needORT(t)
	m, err := LoadModel(ModelConfig{Path: filepath.Join(modelsDir(), name+".onnx"), Workers: workers})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

func newTestServer(t testing.TB, model string) (*Server, *testServer) {
	t.Helper()
	m := loadModel(t, model, 2)
	s, err := NewServer(Config{Name: model, MaxBatch: 4, MaxBodyBytes: 1 << 20}, m)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.WarmUp(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	return s, serveTest(t, s)
}

var stdServer = flag.Bool("std-server", false, "run the HTTP tests against net/http's server instead of the fast path (Server.NewHTTPServer)")

// testServer is a running HTTP server for a Server.
type testServer struct{ URL string }

// serveTest serves s on a loopback port for the test: with the fast path
// (NewHTTPServer, as serve-model does), or net/http with -std-server.
func serveTest(t testing.TB, s *Server) *testServer {
	t.Helper()
	if *stdServer {
		hs := httptest.NewServer(s)
		t.Cleanup(hs.Close)
		return &testServer{URL: hs.URL}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	hs := s.NewHTTPServer(httpfast.Options{})
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close() })
	return &testServer{URL: "http://" + ln.Addr().String()}
}

func do(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func image(v float32) []float32 {
	x := make([]float32, 784)
	for i := range x {
		x[i] = v * float32(i%28) / 28
	}
	return x
}

func v2Body(shape []int64, data []float32) string {
	b, _ := json.Marshal(oip.InferRequest{ID: "r1", Inputs: []oip.Tensor{oip.NewFP32("input", shape, data)}})
	return string(b)
}

func TestHealthAndReadiness(t *testing.T) {
	s, hs := newTestServer(t, "linear")
	if code, _ := do(t, "GET", hs.URL+"/v2/health/live", ""); code != 200 {
		t.Errorf("live: %d", code)
	}
	if code, body := do(t, "GET", hs.URL+"/v2/health/ready", ""); code != 503 || !strings.Contains(body, "false") {
		t.Errorf("ready before SetReady: %d %s", code, body)
	}
	if code, _ := do(t, "POST", hs.URL+"/v2/models/linear/infer", v2Body([]int64{1, 784}, image(1))); code != 503 {
		t.Errorf("infer before ready: want 503, got %d", code)
	}
	s.SetReady(true)
	for _, p := range []string{"/v2/health/ready", "/v2/models/linear/ready"} {
		if code, body := do(t, "GET", hs.URL+p, ""); code != 200 || !strings.Contains(body, `"ready":true`) {
			t.Errorf("%s: %d %s", p, code, body)
		}
	}
	code, body := do(t, "GET", hs.URL+"/v2/models/linear", "")
	var meta oip.ModelMetadata
	if err := json.Unmarshal([]byte(body), &meta); code != 200 || err != nil || meta.Inputs[0].Name != "input" || meta.Outputs[0].Name != "logits" {
		t.Errorf("metadata: %d %s", code, body)
	}
	if code, body := do(t, "GET", hs.URL+"/v1/models/linear", ""); code != 200 || !strings.Contains(body, "AVAILABLE") {
		t.Errorf("tf status: %d %s", code, body)
	}
}

func TestInferMatchesModel(t *testing.T) {
	s, hs := newTestServer(t, "linear")
	s.SetReady(true)
	m := s.model
	a, b := image(1), image(0.3)
	want, err := m.Infer(context.Background(), append(append([]float32{}, a...), b...), nil)
	if err != nil {
		t.Fatal(err)
	}
	// OIP v2, batch of two in a [2,1,28,28] tensor.
	code, body := do(t, "POST", hs.URL+"/v2/models/linear/infer", v2Body([]int64{2, 1, 28, 28}, append(append([]float32{}, a...), b...)))
	if code != 200 {
		t.Fatalf("infer: %d %s", code, body)
	}
	resp, err := oip.DecodeInferResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := resp.Outputs[0].Float32s()
	if resp.ModelName != "linear" || resp.ID != "r1" || len(got) != 20 || resp.Outputs[0].Shape[0] != 2 || resp.Outputs[0].Shape[1] != 10 {
		t.Fatalf("response: %s", body)
	}
	for i := range want {
		if d := got[i] - want[i]; d > 1e-5 || d < -1e-5 {
			t.Fatalf("logit %d: http %g, direct %g", i, got[i], want[i])
		}
	}
	// TF Serving, row format.
	inst, _ := json.Marshal(map[string]any{"instances": [][]float32{a}})
	code, body = do(t, "POST", hs.URL+"/v1/models/linear:predict", string(inst))
	if code != 200 {
		t.Fatalf("predict: %d %s", code, body)
	}
	pr, err := oip.DecodePredictResponse([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := pr.PredictionRows()
	if err != nil || len(rows) != 1 || len(rows[0]) != 10 {
		t.Fatalf("predictions: %v %s", err, body)
	}
	for i := range rows[0] {
		if d := float32(rows[0][i]) - want[i]; d > 1e-5 || d < -1e-5 {
			t.Fatalf("tf logit %d: %g vs %g", i, rows[0][i], want[i])
		}
	}
	// Metrics count both.
	_, metrics := do(t, "GET", hs.URL+"/metrics", "")
	for _, w := range []string{`infadapter_modelserver_requests_total{code="200",model="linear",protocol="v2"} 1`,
		`infadapter_modelserver_requests_total{code="200",model="linear",protocol="tfserving"} 1`,
		"infadapter_modelserver_request_duration_seconds_bucket"} {
		if !strings.Contains(metrics, w) {
			t.Errorf("metrics lack %q", w)
		}
	}
}

func TestMalformedRequests(t *testing.T) {
	s, hs := newTestServer(t, "linear")
	s.SetReady(true)
	big := bytes.Repeat([]byte("1,"), 1<<20)
	cases := []struct {
		name, method, path, body string
		want                     int
		msg                      string
	}{
		{"bad json", "POST", "/v2/models/linear/infer", `{"inputs": [`, 400, "malformed JSON"},
		{"empty body", "POST", "/v2/models/linear/infer", ``, 400, "empty body"},
		{"no inputs", "POST", "/v2/models/linear/infer", `{"inputs": []}`, 400, "no inputs"},
		{"wrong count", "POST", "/v2/models/linear/infer", v2Body([]int64{1, 10}, make([]float32, 10)), 400, "multiple of 784"},
		{"shape mismatch", "POST", "/v2/models/linear/infer", `{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","data":[1,2]}]}`, 400, "elements"},
		{"bytes input", "POST", "/v2/models/linear/infer", `{"inputs":[{"name":"input","shape":[1],"datatype":"BYTES","data":["x"]}]}`, 400, "numeric"},
		{"two inputs", "POST", "/v2/models/linear/infer", `{"inputs":[{"name":"a","shape":[1],"datatype":"FP32","data":[1]},{"name":"b","shape":[1],"datatype":"FP32","data":[1]}]}`, 400, "exactly one"},
		{"unknown output", "POST", "/v2/models/linear/infer", strings.Replace(v2Body([]int64{1, 784}, image(1)), `"inputs"`, `"outputs":[{"name":"probs"}],"inputs"`, 1), 400, "unknown output"},
		{"too many examples", "POST", "/v2/models/linear/infer", v2Body([]int64{5, 784}, make([]float32, 5*784)), 400, "limit is 4"},
		{"too large", "POST", "/v2/models/linear/infer", `{"inputs":[{"name":"input","shape":[1],"datatype":"FP32","data":[` + string(big) + `1]}]}`, 413, "larger than"},
		{"wrong model", "POST", "/v2/models/resnet/infer", v2Body([]int64{1, 784}, image(1)), 404, "not found"},
		{"unknown path", "GET", "/v3/foo", "", 404, "unknown path"},
		{"GET infer", "GET", "/v2/models/linear/infer", "", 405, "method not allowed"},
		{"tf both", "POST", "/v1/models/linear:predict", `{"instances":[[1]],"inputs":[[1]]}`, 400, "both"},
		{"tf short row", "POST", "/v1/models/linear:predict", `{"instances":[[1,2,3]]}`, 400, "wants 784"},
		{"tf ragged", "POST", "/v1/models/linear:predict", `{"instances":[[1,2],[1]]}`, 400, "has 1 values"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, body := do(t, c.method, hs.URL+c.path, c.body)
			if code != c.want || !strings.Contains(body, c.msg) {
				t.Errorf("%s %s: got %d %s; want %d containing %q", c.method, c.path, code, body, c.want, c.msg)
			}
			var e oip.ErrorResponse
			if err := json.Unmarshal([]byte(body), &e); err != nil || e.Error == "" {
				t.Errorf("error body is not {\"error\": ...}: %s", body)
			}
		})
	}
	_, metrics := do(t, "GET", hs.URL+"/metrics", "")
	if !strings.Contains(metrics, `code="400"`) {
		t.Errorf("4xx answers not counted")
	}
}

func TestLocateLibraryMessage(t *testing.T) {
	t.Setenv(EnvORTLib, "/nonexistent/libonnxruntime.so.1")
	if _, err := LocateLibrary(); err == nil || !strings.Contains(err.Error(), EnvORTLib) {
		t.Errorf("explicit bad path: %v", err)
	}
	t.Setenv(EnvORTLib, "")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	_, err := LocateLibrary()
	if err == nil || !strings.Contains(err.Error(), "make onnxruntime") || !strings.Contains(err.Error(), "hack/install-onnxruntime.sh") {
		t.Errorf("missing library: error must say how to install it, got %v", err)
	}
}

func TestServeConfigValidate(t *testing.T) {
	c := ServeConfig{Model: "/nonexistent.onnx", Threads: 0, WarmUp: -1, Port: 70000, Name: "a/b", DynamicBatch: 5000, DynamicBatchDelay: -1}
	c.Defaults()
	err := c.Validate()
	for _, w := range []string{"model", "threads = 0", "warmup = -1", "port = 70000", "name \"a/b\"", "dynamic batch = 5000", "delay = -1ns"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate() = %v; want it to mention %q", err, w)
		}
	}
}

// TestServeConfigEventLoop: which serving path each config gets, and the
// configs --event-loop on refuses.
func TestServeConfigEventLoop(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the event loop is Linux-only")
	}
	model := filepath.Join(t.TempDir(), "m.onnx")
	if err := os.WriteFile(model, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		mode           string
		threads, batch int
		wantLoop       bool
		wantErr        string
	}{
		{"", 1, 0, true, ""},
		{"auto", 1, 1, true, ""},
		{"auto", 2, 0, false, ""},
		{"auto", 1, 4, false, ""},
		{"on", 1, 0, true, ""},
		{"off", 1, 0, false, ""},
		{"on", 2, 0, false, "event loop = on: it runs one inference at a time, so it needs threads = 1 (have 2)"},
		{"on", 1, 8, false, "it cannot batch, so it needs dynamic batch ≤ 1 (have 8)"},
		{"sometimes", 1, 0, false, `event loop = "sometimes": must be auto, on or off`},
	} {
		c := ServeConfig{Model: model, Threads: tc.threads, DynamicBatch: tc.batch, EventLoop: tc.mode}
		c.Defaults()
		err := c.Validate()
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%+v: Validate() = %v", tc, err)
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("%+v: Validate() = %v, want it to say %q", tc, err, tc.wantErr)
		case tc.wantErr == "" && c.useEventLoop() != tc.wantLoop:
			t.Errorf("%+v: event loop %v, want %v", tc, c.useEventLoop(), tc.wantLoop)
		}
	}
}

// FuzzInfer feeds arbitrary bodies to both inference paths: the server
// must answer 200 or a 4xx with an error body, never panic or 5xx.
func FuzzInfer(f *testing.F) {
	f.Add([]byte(v2Body([]int64{1, 784}, image(1))), true)
	f.Add([]byte(`{"inputs":[{"name":"input","shape":[1,1,28,28],"datatype":"FP64","data":[[1]]}]}`), true)
	f.Add([]byte(`{"instances":[[0.5]]}`), false)
	f.Add([]byte(`{"inputs":{"x":[[1,2]]}}`), false)
	f.Add([]byte(`null`), true)
	s, _ := newTestServer(f, "linear")
	s.SetReady(true)
	f.Fuzz(func(t *testing.T, body []byte, v2 bool) {
		path := "/v1/models/linear:predict"
		if v2 {
			path = "/v2/models/linear/infer"
		}
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest("POST", path, bytes.NewReader(body)))
		if rec.Code >= 500 || (rec.Code != 200 && !strings.Contains(rec.Body.String(), `"error"`)) {
			t.Fatalf("body %q: status %d %s", body, rec.Code, rec.Body)
		}
	})
}
