package localmode

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/infadapter/infadapter/pkg/profiler"
)

const publishedYAML = `name: resnet
sloMillis: 750
variants:
- {name: resnet18, accuracy: 0.69758, accuracySource: published, loadTimeSeconds: 0}
- {name: resnet50, accuracy: 0.76130, accuracySource: published, loadTimeSeconds: 0}
`

func TestPublishedFamily(t *testing.T) {
	dir := t.TempDir()
	if fam, err := PublishedFamily(dir); fam != nil || err != nil {
		t.Fatalf("no file: %v, %v; want nil, nil", fam, err)
	}
	if err := os.WriteFile(filepath.Join(dir, profiler.FamilyFile), []byte(publishedYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	fam, err := PublishedFamily(dir)
	if err != nil || fam == nil || fam.Name != "resnet" || fam.SLOMillis != 750 || len(fam.Variants) != 2 {
		t.Fatalf("published family: %+v, %v", fam, err)
	}
	if err := checkPublished(fam, map[string]string{"resnet18": "a", "resnet50": "b"}); err != nil {
		t.Errorf("all listed: %v", err)
	}
	if err := checkPublished(fam, map[string]string{"resnet18": "a", "resnet34": "b"}); err == nil || !strings.Contains(err.Error(), "resnet34.onnx") {
		t.Errorf("unlisted model: err %v", err)
	}
	// One measured variant: not a published family.
	mixed := strings.Replace(publishedYAML, "0.76130, accuracySource: published", "0.76130, accuracySource: measured", 1)
	if err := os.WriteFile(filepath.Join(dir, profiler.FamilyFile), []byte(mixed), 0o644); err != nil {
		t.Fatal(err)
	}
	if fam, err := PublishedFamily(dir); fam != nil || err != nil {
		t.Errorf("mixed sources: %v, %v; want nil, nil", fam, err)
	}
	// A broken file is an error, not silently Fashion-MNIST.
	if err := os.WriteFile(filepath.Join(dir, profiler.FamilyFile), []byte("name: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := PublishedFamily(dir); err == nil {
		t.Error("broken profile.yaml accepted")
	}
	// The committed Fashion-MNIST family measures its accuracy.
	_, file, _, _ := runtime.Caller(0)
	fm := filepath.Join(filepath.Dir(file), "..", "..", "third_party", "models", "fmnist")
	if fam, err := PublishedFamily(fm); fam != nil || err != nil {
		t.Errorf("fmnist: %v, %v; want nil, nil", fam, err)
	}
}

func TestWriteSummaryPublished(t *testing.T) {
	sum := &Summary{Config: Default(), AccuracyNote: NotMeasuredNote,
		Runs: []RunSummary{{Policy: "infadapter", Requests: 100, PlannedAccuracy: 0.73, RoutedAccuracy: 0.72, AccuracyNote: NotMeasuredNote}}}
	var b bytes.Buffer
	WriteSummary(&b, sum)
	out := b.String()
	for _, want := range []string{"n/a", "73.00%", "published, not measured", "not measured (random inputs, no labels)"} {
		if !strings.Contains(out, want) {
			t.Errorf("summary lacks %q:\n%s", want, out)
		}
	}
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[0] == "infadapter" && f[4] != "n/a" {
			t.Errorf("served column shows %q, want n/a:\n%s", f[4], out)
		}
	}
	// Fashion-MNIST: served accuracy is a measured number.
	sum = &Summary{Config: Default(), Runs: []RunSummary{{Policy: "infadapter", Requests: 100, ServedAccuracy: 0.9, PlannedAccuracy: 0.91}}}
	b.Reset()
	WriteSummary(&b, sum)
	if out := b.String(); !strings.Contains(out, "90.00%") || strings.Contains(out, "published") {
		t.Errorf("fmnist summary:\n%s", out)
	}
}
