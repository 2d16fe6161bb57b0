package profiler

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/infadapter/infadapter/pkg/loadgen"
	"github.com/infadapter/infadapter/pkg/modelserver"
	"github.com/infadapter/infadapter/pkg/oip"
	"github.com/infadapter/infadapter/pkg/profile"
)

// resnetPublished is torchvision's published ImageNet-1K top-1 of the
// IMAGENET1K_V1 weights, cheapest first (hack/export-resnet).
var resnetPublished = []struct {
	name string
	top1 float64
}{{"resnet18", 0.69758}, {"resnet34", 0.73314}, {"resnet50", 0.76130}, {"resnet101", 0.77374}, {"resnet152", 0.78312}}

// resnetDir is where `make resnet-models` exports the family
// ($INFADAPTER_RESNET_DIR overrides it).
func resnetDir() string {
	if d := os.Getenv("INFADAPTER_RESNET_DIR"); d != "" {
		return d
	}
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, _ := os.UserHomeDir()
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "infadapter", "models", "resnet")
}

// TestResNetFamily loads every exported random-weight ResNet through ONNX
// Runtime, runs one random image and checks the [1000] logits, and checks
// that the family's profile.yaml lists the five variants cheapest first
// with torchvision's published accuracies labelled "published, not
// measured".
//
// The family is optional and large (~650 MB, exported by `make
// resnet-models` with Debian's python3-torchvision), and CI does not
// export it, so this test SKIPS when the models are absent — also under
// CI=true. That is a deliberate exception to the rule that heavy tests
// fail in CI: nothing in CI provides these files. (A missing ONNX Runtime
// library still fails in CI, as everywhere in this package.)
func TestResNetFamily(t *testing.T) {
	dir := resnetDir()
	if _, err := os.Stat(filepath.Join(dir, FamilyFile)); err != nil {
		t.Skipf("ResNet family not exported (%v): run `make resnet-models` to test it", err)
	}
	if _, err := modelserver.LocateLibrary(); err != nil {
		skipOrFail(t, err)
	}
	base, vs, err := LoadFamily(dir)
	if err != nil {
		t.Fatal(err)
	}
	if base == nil || !base.AllPublished() {
		t.Fatalf("%s: every accuracy must be published", filepath.Join(dir, FamilyFile))
	}
	if len(vs) != len(resnetPublished) {
		t.Fatalf("%d variants in %s, want %d", len(vs), dir, len(resnetPublished))
	}
	samples, err := loadgen.Random(loadgen.ProtocolV2, []int64{3, 224, 224}, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	req, err := oip.DecodeInferRequest(samples[0].Body)
	if err != nil {
		t.Fatal(err)
	}
	img, err := req.Inputs[0].Float32s()
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range resnetPublished {
		v, bv := vs[i], base.Variants[i]
		if v.Name != want.name || v.Accuracy != want.top1 || v.AccuracySource != profile.SourcePublished {
			t.Errorf("variant %d: %s %.5f %q, want %s %.5f published", i, v.Name, v.Accuracy, v.AccuracySource, want.name, want.top1)
		}
		if l := bv.FormatAccuracy(); !strings.HasSuffix(l, "(published, not measured)") {
			t.Errorf("%s: accuracy shown as %q", v.Name, l)
		}
		m, err := modelserver.LoadModel(modelserver.ModelConfig{Path: v.Model, Workers: 1})
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if !slices.Equal(m.InputShape(), []int64{-1, 3, 224, 224}) || !slices.Equal(m.OutputShape(), []int64{-1, 1000}) {
			t.Errorf("%s: input %v output %v, want [-1 3 224 224] and [-1 1000]", v.Name, m.InputShape(), m.OutputShape())
		}
		out, err := m.Infer(context.Background(), img, nil)
		m.Close()
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		if len(out) != 1000 {
			t.Fatalf("%s: %d logits, want 1000", v.Name, len(out))
		}
		lo, hi := out[0], out[0]
		for _, x := range out {
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				t.Fatalf("%s: non-finite logit %v", v.Name, x)
			}
			lo, hi = min(lo, x), max(hi, x)
		}
		if !(hi > lo) {
			t.Errorf("%s: all 1000 logits equal %v: the network computed nothing", v.Name, lo)
		}
		t.Logf("%-9s %s, logits in [%.3g, %.3g], argmax %d (meaningless: random weights)", v.Name, bv.FormatAccuracy(), lo, hi, oip.ArgMax(out))
	}
}

// TestLoadFamilyMetadataOnly: a family whose profile.yaml has accuracies
// but no capacities yet (what `make resnet-models` writes) loads, in the
// file's order, with the accuracy source kept.
func TestLoadFamilyMetadataOnly(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"big", "small", "extra"} {
		if err := os.WriteFile(filepath.Join(dir, n+".onnx"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	y := "name: fam\nsloMillis: 750\nvariants:\n" +
		"- {name: small, accuracy: 0.7, accuracySource: published, loadTimeSeconds: 0}\n" +
		"- {name: big, accuracy: 0.78, accuracySource: published, loadTimeSeconds: 0}\n"
	if err := os.WriteFile(filepath.Join(dir, FamilyFile), []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	base, vs, err := LoadFamily(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, v := range vs {
		names = append(names, v.Name+":"+v.AccuracySource)
	}
	if base.Name != "fam" || !slices.Equal(names, []string{"small:published", "big:published", "extra:"}) {
		t.Fatalf("base %q, variants %v", base.Name, names)
	}
	// A real error in the file is still reported.
	if err := os.WriteFile(filepath.Join(dir, FamilyFile), []byte(strings.Replace(y, "0.78", "78", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadFamily(dir); err == nil || !strings.Contains(err.Error(), "variants[1].accuracy") {
		t.Fatalf("bad accuracy: err %v", err)
	}
}

// TestBodyFollowsModelShape: without an explicit body, requests carry an
// image of the shape the endpoint's metadata gives; Fashion-MNIST models
// and endpoints without metadata keep the zero 28×28 image.
func TestBodyFollowsModelShape(t *testing.T) {
	meta := map[string]string{
		"/v2/models/rn":  `{"name":"rn","inputs":[{"name":"input","datatype":"FP32","shape":[-1,3,4,4]}]}`,
		"/v2/models/fm":  `{"name":"fm","inputs":[{"name":"input","datatype":"FP32","shape":[-1,1,28,28]}]}`,
		"/v2/models/bad": `{}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if b, ok := meta[r.URL.Path]; ok {
			_, _ = w.Write([]byte(b))
			return
		}
		http.NotFound(w, r)
	}))
	defer srv.Close()
	p, err := New(Default(), nil)
	if err != nil {
		t.Fatal(err)
	}
	// The zero image's shape is [1,1,1,28,28] (784 values; the model server
	// goes by the element count), as profiles were measured with before.
	zero := []int64{1, 1, 1, 28, 28}
	for model, want := range map[string][]int64{"rn": {1, 3, 4, 4}, "fm": zero, "bad": zero, "none": zero} {
		b, err := p.body(context.Background(), Target{URL: srv.URL, Model: model})
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		req, err := oip.DecodeInferRequest(b)
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		if !slices.Equal(req.Inputs[0].Shape, want) {
			t.Errorf("%s: shape %v, want %v", model, req.Inputs[0].Shape, want)
		}
	}
}
