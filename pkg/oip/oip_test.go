package oip

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestParsePath(t *testing.T) {
	tests := []struct {
		name    string
		path    string
		want    Route
		wantErr bool
	}{
		{"live", "/v2/health/live", Route{Kind: KindServerLive}, false},
		{"ready", "/v2/health/ready", Route{Kind: KindServerReady}, false},
		{"server meta", "/v2", Route{Kind: KindServerMeta}, false},
		{"infer", "/v2/models/resnet/infer", Route{Kind: KindInfer, Model: "resnet"}, false},
		{"infer version", "/v2/models/resnet/versions/3/infer", Route{Kind: KindInfer, Model: "resnet", Version: "3"}, false},
		{"model meta", "/v2/models/resnet", Route{Kind: KindModelMeta, Model: "resnet"}, false},
		{"model ready", "/v2/models/resnet/ready", Route{Kind: KindModelReady, Model: "resnet"}, false},
		{"tf predict", "/v1/models/resnet:predict", Route{Kind: KindTFPredict, Model: "resnet"}, false},
		{"tf predict version", "/v1/models/resnet/versions/2:predict", Route{Kind: KindTFPredict, Model: "resnet", Version: "2"}, false},
		{"tf status", "/v1/models/resnet", Route{Kind: KindTFModelStatus, Model: "resnet"}, false},
		{"empty model", "/v2/models//infer", Route{}, true},
		{"bad suffix", "/v2/models/a/explain", Route{}, true},
		{"root", "/", Route{}, true},
		{"colon in name", "/v1/models/a:b:predict", Route{}, true},
		{"tf extra", "/v1/models/a/b:predict", Route{}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePath(tc.path)
			if (err != nil) != tc.wantErr {
				t.Fatalf("ParsePath(%q) err = %v, wantErr %v", tc.path, err, tc.wantErr)
			}
			if err != nil {
				if StatusOf(err) != http.StatusNotFound {
					t.Errorf("status = %d, want 404", StatusOf(err))
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ParsePath(%q) (-want +got):\n%s", tc.path, diff)
			}
			if got.Version == "" && got.Path() != strings.TrimSuffix(tc.path, "/") {
				t.Errorf("Path() = %q, want %q", got.Path(), tc.path)
			}
		})
	}
}

func TestWithModel(t *testing.T) {
	r, _ := ParsePath("/v2/models/resnet/versions/1/infer")
	if got := r.WithModel("resnet18").Path(); got != "/v2/models/resnet18/infer" {
		t.Errorf("got %q", got)
	}
	r, _ = ParsePath("/v1/models/resnet:predict")
	if got := r.WithModel("resnet18").Path(); got != "/v1/models/resnet18:predict" {
		t.Errorf("got %q", got)
	}
}

func TestDecodeInferRequest(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr string // substring; "" = ok
	}{
		{"flat fp32", `{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`, ""},
		{"nested fp32", `{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}]}`, ""},
		{"bytes", `{"inputs":[{"name":"s","shape":[2],"datatype":"BYTES","data":["a","b"]}]}`, ""},
		{"bool", `{"inputs":[{"name":"b","shape":[1],"datatype":"BOOL","data":[true]}]}`, ""},
		{"count mismatch", `{"inputs":[{"name":"x","shape":[1,4],"datatype":"FP32","data":[1,2,3]}]}`, "data has 3 elements, shape [1 4] needs 4"},
		{"no inputs", `{"inputs":[]}`, "no inputs"},
		{"unknown datatype", `{"inputs":[{"name":"x","shape":[1],"datatype":"FLOAT","data":[1]}]}`, `unknown datatype "FLOAT"`},
		{"negative dim", `{"inputs":[{"name":"x","shape":[-1],"datatype":"FP32","data":[1]}]}`, "negative"},
		{"huge shape", `{"inputs":[{"name":"x","shape":[100000,100000],"datatype":"FP32","data":[1]}]}`, "more than"},
		{"string in fp32", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":["a"]}]}`, "element is a string"},
		{"missing data", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32"}]}`, "missing data"},
		{"dup name", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]},{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]}`, "duplicate"},
		{"malformed", `{"inputs":[`, "malformed JSON"},
		{"wrong type", `{"inputs":{}}`, `field "inputs"`},
		{"trailing", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[1]}]} {}`, "trailing"},
		{"empty", ``, "empty body"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeInferRequest([]byte(tc.body))
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
			}
			if s := StatusOf(err); s != http.StatusBadRequest {
				t.Errorf("status = %d, want 400", s)
			}
		})
	}
}

func TestReadBodyLimit(t *testing.T) {
	_, err := ReadBody(bytes.NewReader(make([]byte, 11)), 10)
	if !errors.Is(err, ErrBodyTooLarge) || StatusOf(err) != http.StatusRequestEntityTooLarge {
		t.Fatalf("err = %v (status %d), want ErrBodyTooLarge/413", err, StatusOf(err))
	}
	b, err := ReadBody(bytes.NewReader(make([]byte, 10)), 10)
	if err != nil || len(b) != 10 {
		t.Fatalf("at the limit: %v, %d bytes", err, len(b))
	}
}

func TestNewFP32RoundTrip(t *testing.T) {
	in := []float32{0.5, -1, 3.25}
	req := InferRequest{Inputs: []Tensor{NewFP32("x", []int64{1, 3}, in)}}
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := DecodeInferRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	v, err := got.Inputs[0].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(in, v); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	if ArgMax(v) != 2 {
		t.Errorf("ArgMax = %d, want 2", ArgMax(v))
	}
}

func TestPredictRequest(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		rows    int
		wantErr string
	}{
		{"instances", `{"instances":[[1,2],[3,4]]}`, 2, ""},
		{"instances nested", `{"instances":[[[1],[2]],[[3],[4]]]}`, 2, ""},
		{"inputs columnar", `{"inputs":[[1,2]]}`, 1, ""},
		{"inputs named", `{"inputs":{"x":[[1,2]]}}`, 1, ""},
		{"both", `{"instances":[[1]],"inputs":[[1]]}`, 0, "both"},
		{"neither", `{"signature_name":"s"}`, 0, "neither"},
		{"ragged", `{"instances":[[1,2],[3]]}`, 0, "has 1 values"},
		{"two named", `{"inputs":{"x":[[1]],"y":[[1]]}}`, 0, "single-input"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := DecodePredictRequest([]byte(tc.body))
			var rows [][]float32
			if err == nil {
				rows, err = req.Rows()
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != tc.rows {
				t.Errorf("rows = %d, want %d", len(rows), tc.rows)
			}
		})
	}
}

func TestPredictResponseRows(t *testing.T) {
	r, err := DecodePredictResponse([]byte(`{"predictions":[[0.1,0.9],[0.8,0.2]]}`))
	if err != nil {
		t.Fatal(err)
	}
	rows, err := r.PredictionRows()
	if err != nil {
		t.Fatal(err)
	}
	if ArgMax(rows[0]) != 1 || ArgMax(rows[1]) != 0 {
		t.Errorf("rows = %v", rows)
	}
}

// FuzzDecode checks that no body makes the decoders panic and that every
// failure is a 4xx RequestError.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		`{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`,
		`{"inputs":[{"name":"x","shape":[2,2],"datatype":"FP32","data":[[1,2],[3,4]]}]}`,
		`{"inputs":[{"name":"s","shape":[1],"datatype":"BYTES","data":["a"]}]}`,
		`{"instances":[[1,2],[3,4]]}`, `{"inputs":{"x":[[1]]}}`, `[`, `null`, `{}`,
		`{"inputs":[{"name":"x","shape":[9223372036854775807,2],"datatype":"FP32","data":[]}]}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		check := func(err error) {
			if err != nil {
				if s := StatusOf(err); s < 400 || s > 499 {
					t.Fatalf("status %d for %v", s, err)
				}
			}
		}
		_, err := DecodeInferRequest(b)
		check(err)
		pr, err := DecodePredictRequest(b)
		check(err)
		if err == nil {
			_, err = pr.Rows()
			check(err)
		}
		_, err = DecodeInferResponse(b)
		check(err)
	})
}

func FuzzParsePath(f *testing.F) {
	for _, s := range []string{"/v2/models/a/infer", "/v1/models/a:predict", "/v2/models/a/versions/1/ready", "/v2", "//"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		r, err := ParsePath(p)
		if err != nil {
			return
		}
		// A parsed route renders to a path that parses to the same route.
		r2, err := ParsePath(r.Path())
		if err != nil || r2 != r {
			t.Fatalf("ParsePath(%q) = %+v; Path() = %q re-parses to %+v, %v", p, r, r.Path(), r2, err)
		}
	})
}
