package profiler

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/infadapter/infadapter/pkg/dataset/fashionmnist"
	"github.com/infadapter/infadapter/pkg/modelserver"
)

func familyDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "third_party", "models", "fmnist")
}

// skipOrFail skips locally but fails in CI, which installs everything.
func skipOrFail(t *testing.T, err error) {
	t.Helper()
	if os.Getenv("CI") != "" {
		t.Fatalf("CI: %v", err)
	}
	t.Skipf("skipping: %v", err)
}

// TestCommittedModelsAccuracy runs every committed Fashion-MNIST variant
// over the 10,000 test images through ONNX Runtime and checks the accuracy
// written in the family's profile.yaml (to 0.1 points), that every model
// file is listed, that accuracy is labelled measured, and that it rises
// strictly along the ladder (which the profile lists cheapest first).
func TestCommittedModelsAccuracy(t *testing.T) {
	if _, err := modelserver.LocateLibrary(); err != nil {
		skipOrFail(t, err)
	}
	set, err := fashionmnist.Load("", fashionmnist.Test, 0)
	if errors.Is(err, fashionmnist.ErrNotInstalled) {
		skipOrFail(t, err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if set.Len() != 10000 {
		t.Fatalf("test set has %d images, want 10000", set.Len())
	}
	base, vs, err := LoadFamily(familyDir())
	if err != nil {
		t.Fatal(err)
	}
	if base == nil {
		t.Fatalf("%s/%s is missing", familyDir(), FamilyFile)
	}
	if len(base.Variants) != len(vs) {
		t.Fatalf("profile.yaml must list every committed model: %d listed, %d files", len(base.Variants), len(vs))
	}
	prev := -1.0
	for _, v := range vs {
		got, err := MeasureAccuracy(context.Background(), v.Model, set)
		if err != nil {
			t.Fatalf("%s: %v", v.Name, err)
		}
		t.Logf("%-12s profile %.2f %%, measured %.2f %%", v.Name, 100*v.Accuracy, 100*got)
		if math.Abs(got-v.Accuracy) > 0.001 {
			t.Errorf("%s: measured %.4f, profile says %.4f", v.Name, got, v.Accuracy)
		}
		if v.AccuracySource != "measured" {
			t.Errorf("%s: accuracySource %q, want measured", v.Name, v.AccuracySource)
		}
		if got <= prev {
			t.Errorf("%s: accuracy %.4f does not rise above the cheaper variant's %.4f", v.Name, got, prev)
		}
		prev = got
	}
}
