package localmode

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/dataset/fashionmnist"
	"github.com/infadapter/infadapter/pkg/modelserver"
	"github.com/infadapter/infadapter/pkg/profile"
	"github.com/infadapter/infadapter/pkg/profiler"
)

// The test binary doubles as the variant server (like pkg/backend/local's
// tests), so Run starts real serve-model processes without building
// cmd/infadapter.
const envServe = "INFADAPTER_LOCALMODE_TEST_SERVE"

func TestMain(m *testing.M) {
	if os.Getenv(envServe) == "1" {
		os.Exit(modelserver.Main(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// need skips without a heavy dependency, but fails in CI, which installs it.
func need(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
}

// TestRunEndToEnd runs the whole local mode for a short replay: real
// serve-model processes under the local backend, the dispatcher, the loop
// with the InfAdapter decider, the chunked load generator and the
// dashboard; then checks the summary against what must hold and that no
// server process survives.
func TestRunEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts real servers and replays 30 s")
	}
	_, err := modelserver.LocateLibrary()
	need(t, err)
	_, err = fashionmnist.Load("", fashionmnist.Test, 1)
	need(t, err)

	// Two variants from the committed linear model (the test checks the
	// plumbing, not the ladder): "lin-a" and "lin-b".
	dir := t.TempDir()
	models := linearCopies(t, dir, "lin-a", "lin-b")
	// A given profile (core units of 250 m) so the test does not profile.
	prof := profile.Profile{Name: ModelName, SLOMillis: 500, Variants: []profile.Variant{
		{Name: "lin-a", Accuracy: 0.84, Capacity: []profile.Point{{Cores: 1, RPS: 150}, {Cores: 2, RPS: 300}, {Cores: 4, RPS: 500}}},
		{Name: "lin-b", Accuracy: 0.83, Capacity: []profile.Point{{Cores: 1, RPS: 150}, {Cores: 2, RPS: 300}, {Cores: 4, RPS: 500}}},
	}}
	profPath := writeProfile(t, dir, prof)

	cfg := testConfig(dir, models, profPath)
	cfg.DashboardAddr = "127.0.0.1:0"
	cfg.Baseline = "static-best"
	sum, status := runFor(t, cfg)
	if len(sum.Runs) != 2 || sum.Runs[0].Policy != "infadapter" || sum.Runs[1].Policy != "static-lin-a" {
		t.Fatalf("runs = %+v", sum.Runs)
	}
	for _, r := range sum.Runs {
		// 20 s of a 20→60 RPS trace: several hundred requests.
		if r.Requests < 300 || r.OK < r.Requests/2 {
			t.Errorf("%s: %d requests, %d ok; want >= 300 and >= 50%% ok (the plumbing, not the latency: the machine may be shared) (errors %v)", r.Policy, r.Requests, r.OK, r.ErrorKinds)
		}
		// The linear model's real test accuracy is 84.23 %; a few hundred
		// shuffled test images land within a few points of it.
		if r.ServedAccuracy < 0.75 || r.ServedAccuracy > 0.93 {
			t.Errorf("%s: served accuracy %.3f, want near 0.84", r.Policy, r.ServedAccuracy)
		}
		if r.AvgCores <= 0 || r.AvgCores > cfg.BudgetCores+1e-9 {
			t.Errorf("%s: avg cores %v outside (0, budget]", r.Policy, r.AvgCores)
		}
		if r.Decisions < 2 {
			t.Errorf("%s: %d decisions in 20 s, want several", r.Policy, r.Decisions)
		}
	}
	if !strings.Contains(status.String(), "[infadapter]") {
		t.Errorf("no status line printed:\n%s", status.String())
	}
	j, err := os.ReadFile(filepath.Join(sum.RunDir, "decisions.jsonl"))
	if err != nil || !strings.Contains(string(j), `"policy":"infadapter"`) {
		t.Errorf("journal: %v, %d bytes", err, len(j))
	}
	// No server process may survive Run.
	out, _ := exec.Command("pgrep", "-f", regexp.QuoteMeta(os.Args[0])+" serve-model").CombinedOutput()
	if s := strings.TrimSpace(string(out)); s != "" {
		t.Errorf("server processes left behind: %s", s)
	}
}

// TestRunPublishedFamily runs local mode on a family whose profile.yaml
// marks every accuracy published (as `make resnet-models` writes it; here
// two copies of the committed linear model, so the test needs no export):
// requests are random images of the model's input shape, the plan uses the
// published accuracies, and served accuracy is reported as not measured.
func TestRunPublishedFamily(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: starts real servers and replays 20 s")
	}
	_, err := modelserver.LocateLibrary()
	need(t, err)
	dir := t.TempDir()
	models := linearCopies(t, dir, "pub-a", "pub-b")
	fam := "name: pub\nsloMillis: 500\nvariants:\n" +
		"- {name: pub-a, accuracy: 0.70, accuracySource: published, loadTimeSeconds: 0}\n" +
		"- {name: pub-b, accuracy: 0.75, accuracySource: published, loadTimeSeconds: 0}\n"
	if err := os.WriteFile(filepath.Join(models, profiler.FamilyFile), []byte(fam), 0o644); err != nil {
		t.Fatal(err)
	}
	prof := profile.Profile{Name: "pub", SLOMillis: 500, Variants: []profile.Variant{
		{Name: "pub-a", Accuracy: 0.70, AccuracySource: "published", Capacity: []profile.Point{{Cores: 1, RPS: 150}, {Cores: 2, RPS: 300}, {Cores: 4, RPS: 500}}},
		{Name: "pub-b", Accuracy: 0.75, AccuracySource: "published", Capacity: []profile.Point{{Cores: 1, RPS: 150}, {Cores: 2, RPS: 300}, {Cores: 4, RPS: 500}}},
	}}
	profPath := writeProfile(t, dir, prof)
	cfg := testConfig(dir, models, profPath)
	cfg.DatasetDir = filepath.Join(dir, "no-dataset") // must not be needed
	cfg.DashboardAddr = ""
	cfg.Baseline = "none"
	sum, _ := runFor(t, cfg)
	if len(sum.Runs) != 1 || sum.AccuracyNote != NotMeasuredNote {
		t.Fatalf("runs %d, note %q", len(sum.Runs), sum.AccuracyNote)
	}
	r := sum.Runs[0]
	if r.Requests < 300 || r.OK < r.Requests/2 {
		t.Errorf("%d requests, %d ok (errors %v)", r.Requests, r.OK, r.ErrorKinds)
	}
	if r.ServedAccuracy != 0 || r.AccuracyNote != NotMeasuredNote {
		t.Errorf("served accuracy %v, note %q: must be not measured", r.ServedAccuracy, r.AccuracyNote)
	}
	// The plan's accuracy is the published figures' (between 0.70 and 0.75).
	if r.PlannedAccuracy < 0.70-1e-9 || r.PlannedAccuracy > 0.75+1e-9 {
		t.Errorf("planned accuracy %v, want within the published [0.70, 0.75]", r.PlannedAccuracy)
	}
	var out bytes.Buffer
	WriteSummary(&out, sum)
	if !strings.Contains(out.String(), "published, not measured") {
		t.Errorf("summary does not label the accuracy:\n%s", out.String())
	}
}

// linearCopies writes the committed linear model as each of names (.onnx)
// into dir/models and returns that directory: variants for tests of the
// plumbing, not of the ladder.
func linearCopies(t *testing.T, dir string, names ...string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "..", "third_party", "models", "fmnist", "linear.onnx")
	models := filepath.Join(dir, "models")
	if err := os.MkdirAll(models, 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatalf("committed model: %v", err)
	}
	for _, n := range names {
		if err := os.WriteFile(filepath.Join(models, n+".onnx"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return models
}

// writeProfile writes prof as dir/profile.json and returns its path.
func writeProfile(t *testing.T, dir string, prof profile.Profile) string {
	t.Helper()
	pb, _ := json.Marshal(prof)
	path := filepath.Join(dir, "profile.json")
	if err := os.WriteFile(path, pb, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// testConfig is the local-mode configuration of these tests: the given
// profile, a 20 s replay of a 20–60 RPS trace, an SLO of 500 ms and the
// test binary as the model server.
func testConfig(dir, models, profPath string) Config {
	cfg := Default()
	cfg.SLO = 500 * time.Millisecond
	cfg.PeakRPS, cfg.BaseRPS = 60, 20
	cfg.ModelsDir = models
	cfg.Profile = profPath
	cfg.CacheDir = filepath.Join(dir, "cache")
	cfg.Duration = 20 * time.Second
	cfg.ServerCommand = []string{os.Args[0], "serve-model"}
	cfg.ServerEnv = []string{envServe + "=1"}
	return cfg
}

// runFor runs cfg (at most 5 minutes) and returns the summary and the
// status output; it fails the test if Run fails.
func runFor(t *testing.T, cfg Config) (*Summary, *bytes.Buffer) {
	t.Helper()
	var status bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	sum, err := Run(ctx, cfg, Options{Status: &status, Info: &status})
	if err != nil {
		t.Fatalf("Run: %v\n%s", err, status.String())
	}
	return sum, &status
}
