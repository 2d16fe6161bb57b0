package local

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/infadapter/infadapter/pkg/modelserver"
)

// The test binary doubles as the variant server: with envServe set it runs
// modelserver.Serve with serve-model's flags, so these tests start real
// processes without building cmd/infadapter.
const envServe = "INFADAPTER_LOCAL_TEST_SERVE"

// envBackend makes the test binary a backend holding one instance of the
// model it names, printing "pid <child>" and then waiting to be killed
// (the orphan test kills it with SIGKILL).
const envBackend = "INFADAPTER_LOCAL_TEST_BACKEND"

func backendMain(model string) int {
	b, err := New(Config{Command: []string{os.Args[0], "serve-model"}, Env: []string{envServe + "=1"}})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	sts, err := b.Apply(context.Background(), []Instance{{Name: "orphan", Model: model, MilliCores: 500}})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Printf("pid %d\n", sts[0].PID)
	select {}
}

func TestMain(m *testing.M) {
	if os.Getenv(envServe) == "1" {
		os.Exit(modelserver.Main(os.Args[1:]))
	}
	if m := os.Getenv(envBackend); m != "" {
		os.Exit(backendMain(m))
	}
	os.Exit(m.Run())
}

// needORT skips without the ONNX Runtime library, but fails in CI, which installs it.
func needORT(t *testing.T) {
	t.Helper()
	if _, err := modelserver.LocateLibrary(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
}

func modelPath(t *testing.T, name string) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "third_party", "models", "fmnist", name+".onnx")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("committed model missing: %v", err)
	}
	return p
}

func testConfig(t *testing.T) Config {
	return Config{
		Command: []string{os.Args[0], "serve-model"},
		Env:     []string{envServe + "=1"},
		Logger:  slog.New(slog.NewTextHandler(testWriter{t}, nil)),
		Output:  testWriter{t},
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}
