package loadgen

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/infadapter/infadapter/pkg/oip"
)

func TestRandom(t *testing.T) {
	shape := []int64{3, 8, 8}
	a, err := Random(ProtocolV2, shape, 3, 7)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Random(ProtocolV2, shape, 3, 7)
	c, _ := Random(ProtocolV2, shape, 3, 8)
	if len(a) != 3 {
		t.Fatalf("%d samples, want 3", len(a))
	}
	for i := range a {
		if !bytes.Equal(a[i].Body, b[i].Body) {
			t.Errorf("sample %d differs for the same seed", i)
		}
		if bytes.Equal(a[i].Body, c[i].Body) {
			t.Errorf("sample %d is the same for seeds 7 and 8", i)
		}
		if a[i].Label != -1 {
			t.Errorf("sample %d labelled %d; random inputs are unlabelled", i, a[i].Label)
		}
		req, err := oip.DecodeInferRequest(a[i].Body)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(req.Inputs[0].Shape, []int64{1, 3, 8, 8}) {
			t.Errorf("shape %v, want [1 3 8 8]", req.Inputs[0].Shape)
		}
		xs, err := req.Inputs[0].Float32s()
		if err != nil || len(xs) != 192 {
			t.Fatalf("%d values, err %v", len(xs), err)
		}
		lo, hi := xs[0], xs[0]
		for _, x := range xs {
			lo, hi = min(lo, x), max(hi, x)
		}
		if lo < 0 || hi > 1 || hi-lo < 0.5 {
			t.Errorf("values in [%v, %v]; want spread over [0,1]", lo, hi)
		}
	}
	if bytes.Equal(a[0].Body, a[1].Body) {
		t.Error("distinct images are equal")
	}
	for _, bad := range []struct {
		shape []int64
		n     int
	}{{[]int64{0, 3}, 1}, {nil, 1}, {[]int64{3}, 0}} {
		if _, err := Random(ProtocolV2, bad.shape, bad.n, 1); err == nil {
			t.Errorf("Random(%v, %d) accepted", bad.shape, bad.n)
		}
	}
}

func TestParseInputShape(t *testing.T) {
	for _, tc := range []struct {
		body string
		want []int64
		err  string
	}{
		{`{"name":"r","inputs":[{"name":"input","datatype":"FP32","shape":[-1,3,224,224]}]}`, []int64{3, 224, 224}, ""},
		{`{"name":"r","inputs":[{"name":"input","datatype":"FP32","shape":[1,1,28,28]}]}`, []int64{1, 28, 28}, ""},
		{`{"name":"r","inputs":[{"name":"x","datatype":"FP32","shape":[784]}]}`, []int64{784}, ""},
		{`{"name":"r","inputs":[]}`, nil, "no inputs"},
		{`{"name":"r","inputs":[{"name":"x","shape":[-1,3,-1,-1]}]}`, nil, "dynamic dimension"},
		{`{"name":"r","inputs":[{"name":"x","shape":[-1]}]}`, nil, "dynamic dimension"},
		{`not json`, nil, "model metadata"},
	} {
		got, err := ParseInputShape([]byte(tc.body))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.body, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, %v; want %v", tc.body, got, err, tc.want)
		}
	}
}

func TestInputShape(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/models/resnet18" {
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(`{"name":"resnet18","inputs":[{"name":"input","datatype":"FP32","shape":[-1,3,224,224]}]}`))
	}))
	defer srv.Close()
	got, err := InputShape(context.Background(), nil, srv.URL+"/", "resnet18")
	if err != nil || !slices.Equal(got, []int64{3, 224, 224}) {
		t.Fatalf("InputShape = %v, %v", got, err)
	}
	if _, err := InputShape(context.Background(), nil, srv.URL, "other"); err == nil || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("missing model: err %v", err)
	}
}

// TestUnlabelledAccuracyNotMeasured: without labels the report carries no
// accuracy figure, only the note saying it was not measured.
func TestUnlabelledAccuracyNotMeasured(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"model_name":"m","outputs":[{"name":"logits","datatype":"FP32","shape":[1,2],"data":[0,1]}]}`))
	}))
	defer srv.Close()
	src, err := Random(ProtocolV2, []int64{2, 2}, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	lc := Default()
	lc.Target, lc.Model = srv.URL, "m"
	lc.SLO = 500 * 1e6
	r, err := NewRunner(lc, src)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sched, _ := Constant(20, 1)
	rep, _, err := r.Run(context.Background(), sched)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK == 0 || rep.Accuracy != nil || rep.AccuracyNote != NotMeasured || rep.Labelled != 0 {
		t.Fatalf("ok %d accuracy %v note %q labelled %d", rep.OK, rep.Accuracy, rep.AccuracyNote, rep.Labelled)
	}
}

// FuzzParseInputShape: any metadata body yields an error or a shape of
// positive dimensions, never a panic.
func FuzzParseInputShape(f *testing.F) {
	for _, s := range []string{
		`{"name":"r","inputs":[{"name":"input","datatype":"FP32","shape":[-1,3,224,224]}]}`,
		`{"inputs":[{"shape":[1]}]}`, `{"inputs":[{"shape":[]}]}`, `{"inputs":null}`, `[]`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseInputShape(b)
		if err != nil {
			return
		}
		if len(s) == 0 {
			t.Fatal("empty shape without error")
		}
		for _, d := range s {
			if d < 1 {
				t.Fatalf("shape %v has a dimension < 1", s)
			}
		}
	})
}
