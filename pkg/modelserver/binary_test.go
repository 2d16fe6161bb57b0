package modelserver

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/infadapter/infadapter/pkg/oip"
)

// binaryBody builds an OIP v2 request in the binary tensor data extension:
// a JSON header whose one FP32 input has parameters.binary_data_size, then
// the values as raw little-endian float32. It returns the body and the
// header length (the Inference-Header-Content-Length value). binOut asks for
// the outputs in binary too.
func binaryBody(shape []int64, data []float32, binOut bool) ([]byte, int) {
	req := oip.InferRequest{ID: "r1", Inputs: []oip.Tensor{{Name: "input", Shape: shape, Datatype: oip.DTFP32,
		Parameters: map[string]any{"binary_data_size": 4 * len(data)}}}}
	if binOut {
		req.Parameters = map[string]any{"binary_data_output": true}
	}
	h, _ := json.Marshal(req)
	// The extension leaves "data" out; Marshal wrote "data":null.
	h = []byte(strings.Replace(string(h), `,"data":null`, "", 1))
	b := append([]byte(nil), h...)
	for _, x := range data {
		b = binary.LittleEndian.AppendUint32(b, math.Float32bits(x))
	}
	return b, len(h)
}

// postBinary posts body with the Inference-Header-Content-Length header.
func postBinary(t *testing.T, url string, body []byte, hlen string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set(HeaderBinaryLength, hlen)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// splitBinaryResponse decodes a binary-output response into its JSON
// header and the FP32 values after it.
func splitBinaryResponse(t *testing.T, resp *http.Response, b []byte) (*oip.InferResponse, []float32) {
	t.Helper()
	hl, err := strconv.Atoi(resp.Header.Get(HeaderBinaryLength))
	if err != nil || hl > len(b) {
		t.Fatalf("response %s = %q, body %d bytes", HeaderBinaryLength, resp.Header.Get(HeaderBinaryLength), len(b))
	}
	var r oip.InferResponse
	if err := json.Unmarshal(b[:hl], &r); err != nil {
		t.Fatalf("response header %q: %v", b[:hl], err)
	}
	rest := b[hl:]
	if len(r.Outputs) != 1 || r.Outputs[0].Data != nil || r.Outputs[0].Parameters["binary_data_size"] != float64(len(rest)) {
		t.Fatalf("response header %s with %d bytes after it", b[:hl], len(rest))
	}
	out := make([]float32, len(rest)/4)
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(rest[4*i:]))
	}
	return &r, out
}

func TestBinaryTensorData(t *testing.T) {
	s, hs := newTestServer(t, "linear")
	s.SetReady(true)
	a, b := image(1), image(0.3)
	both := append(append([]float32{}, a...), b...)
	want, err := s.model.Infer(context.Background(), both, nil)
	if err != nil {
		t.Fatal(err)
	}
	url := hs.URL + "/v2/models/linear/infer"
	near := func(got []float32) {
		t.Helper()
		if len(got) != len(want) {
			t.Fatalf("%d outputs, want %d", len(got), len(want))
		}
		for i := range want {
			if d := got[i] - want[i]; d > 1e-5 || d < -1e-5 {
				t.Fatalf("logit %d: %g, direct %g", i, got[i], want[i])
			}
		}
	}

	// Binary in, binary out: the output bytes are the exact float32s.
	body, hl := binaryBody([]int64{2, 1, 28, 28}, both, true)
	resp, rb := postBinary(t, url, body, strconv.Itoa(hl))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("binary infer: %d %s", resp.StatusCode, rb)
	}
	r, got := splitBinaryResponse(t, resp, rb)
	if r.ID != "r1" || r.ModelName != "linear" || !reflect.DeepEqual(r.Outputs[0].Shape, []int64{2, 10}) || r.Outputs[0].Name != "logits" {
		t.Errorf("response header %+v", r)
	}
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("binary logit %d: %g, direct %g", i, got[i], want[i])
		}
	}

	// Binary in, JSON out.
	body, hl = binaryBody([]int64{2, 784}, both, false)
	resp, rb = postBinary(t, url, body, strconv.Itoa(hl))
	jr, err := oip.DecodeInferResponse(rb)
	if resp.StatusCode != 200 || err != nil {
		t.Fatalf("binary in, JSON out: %d %v %s", resp.StatusCode, err, rb)
	}
	vals, _ := jr.Outputs[0].Float32s()
	near(vals)

	// JSON in, binary out asked for per output; and a header with JSON data and no binary part.
	jb := strings.Replace(v2Body([]int64{2, 784}, both), `"inputs"`, `"outputs":[{"name":"logits","parameters":{"binary_data":true}}],"inputs"`, 1)
	resp, rb = postBinary(t, url, []byte(jb), strconv.Itoa(len(jb)))
	if resp.StatusCode != 200 {
		t.Fatalf("JSON in a binary-extension body: %d %s", resp.StatusCode, rb)
	}
	_, got = splitBinaryResponse(t, resp, rb)
	near(got)
	code, jrb := do(t, "POST", url, jb) // the same without the header
	if code != 200 {
		t.Fatalf("JSON in, binary out: %d %s", code, jrb)
	}

	bad := []struct {
		name, hlen string
		body       []byte
		msg        string
	}{
		{"header not a number", "x", body, HeaderBinaryLength},
		{"header past the body", strconv.Itoa(len(body) + 1), body, HeaderBinaryLength},
		{"negative header", "-1", body, HeaderBinaryLength},
		{"empty header", "0", body, "empty JSON header"},
		{"bytes missing", strconv.Itoa(hl), body[:len(body)-4], "6268 bytes follow"},
		{"bytes extra", strconv.Itoa(hl), append(append([]byte{}, body...), 0, 0, 0, 0), "6276 bytes follow"},
		{"size vs shape", strconv.Itoa(len(`{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":12}}]}`)),
			[]byte(`{"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":12}}]}` + "123456789012"), "needs 3136 bytes"},
		{"FP64", strconv.Itoa(len(`{"inputs":[{"name":"input","shape":[1],"datatype":"FP64","parameters":{"binary_data_size":8}}]}`)),
			[]byte(`{"inputs":[{"name":"input","shape":[1],"datatype":"FP64","parameters":{"binary_data_size":8}}]}` + "12345678"), "takes FP32"},
		{"size not integer", strconv.Itoa(len(`{"inputs":[{"name":"input","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":"4"}}]}`)),
			[]byte(`{"inputs":[{"name":"input","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":"4"}}]}` + "1234"), "non-negative integer"},
		{"data and size", strconv.Itoa(len(`{"inputs":[{"name":"input","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}}]}`)),
			[]byte(`{"inputs":[{"name":"input","shape":[1],"datatype":"FP32","data":[1],"parameters":{"binary_data_size":4}}]}` + "1234"), "both"},
		{"binary without size", strconv.Itoa(len(jb)), append([]byte(jb), 1, 2, 3, 4), "no input has parameters.binary_data_size"},
		{"bad binary_data_output", strconv.Itoa(len(`{"parameters":{"binary_data_output":1},"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":3136}}]}`)),
			append([]byte(`{"parameters":{"binary_data_output":1},"inputs":[{"name":"input","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":3136}}]}`), make([]byte, 3136)...), "want true or false"},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			resp, b := postBinary(t, url, c.body, c.hlen)
			var e oip.ErrorResponse
			if resp.StatusCode != 400 || json.Unmarshal(b, &e) != nil || !strings.Contains(e.Error, c.msg) {
				t.Errorf("got %d %s; want 400 containing %q", resp.StatusCode, b, c.msg)
			}
		})
	}
}

// FuzzInferBinary: arbitrary bodies and header lengths in the binary
// extension get 200 or a 4xx with an error body, never a panic or a 5xx.
func FuzzInferBinary(f *testing.F) {
	body, hl := binaryBody([]int64{1, 784}, image(1), true)
	f.Add(body, strconv.Itoa(hl))
	body, hl = binaryBody([]int64{1, 1, 28, 28}, image(0.5), false)
	f.Add(body, strconv.Itoa(hl))
	f.Add([]byte(v2Body([]int64{1, 784}, image(1))), "0")
	f.Add([]byte(`{"inputs":[{"name":"input","shape":[1],"datatype":"FP32","parameters":{"binary_data_size":4}}]}1234`), "95")
	s, _ := newTestServer(f, "linear")
	s.SetReady(true)
	f.Fuzz(func(t *testing.T, body []byte, hlen string) {
		req := httptest.NewRequest("POST", "/v2/models/linear/infer", bytes.NewReader(body))
		req.Header.Set(HeaderBinaryLength, hlen)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code >= 500 || (rec.Code != 200 && !strings.Contains(rec.Body.String(), `"error"`)) {
			t.Fatalf("body %q, header %q: status %d %s", body, hlen, rec.Code, rec.Body)
		}
	})
}
