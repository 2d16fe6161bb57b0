package harness

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// InCI reports whether the CI environment variable is set (CI=true in
// .ci/run). Missing binaries are then a failure, not a skip.
func InCI() bool { return os.Getenv("CI") != "" }

// StartTimeout bounds Start in StartT and Main.
var StartTimeout = 4 * time.Minute

// StartT starts an environment for one test: it skips the test when the
// binaries are not built (fails under CI), fails it when start-up fails
// (printing the tail of every process log), and registers cleanup that
// stops everything, prints the logs if the test failed and removes the run
// dir if it passed.
func StartT(t testing.TB, opts Options) *Env {
	t.Helper()
	if opts.Logf == nil {
		opts.Logf = t.Logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	defer cancel()
	env, err := Start(ctx, opts)
	if errors.Is(err, ErrBinariesMissing) {
		if InCI() {
			t.Fatalf("CI: %v", err)
		}
		t.Skipf("skipping e2e: %v", err)
	}
	if err != nil {
		if env != nil {
			var sb strings.Builder
			env.DumpLogs(&sb, 40)
			t.Log(sb.String())
		}
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			var sb strings.Builder
			env.DumpLogs(&sb, 60)
			t.Logf("test failed; process logs (full logs kept in %s):\n%s", env.RunDir, sb.String())
		}
		if err := env.Stop(); err != nil {
			t.Errorf("stop: %v", err)
		}
		if !t.Failed() && opts.RunDir == "" {
			_ = os.RemoveAll(env.RunDir)
		}
	})
	return env
}

// Main is for TestMain: one shared environment per test package.
//
//	var env *harness.Env
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m, harness.Options{}, &env)) }
//	func TestX(t *testing.T) { harness.Need(t, env); ... }
//
// When binaries are missing it still runs the tests (env stays nil, Need
// skips them) unless CI is set, in which case it returns 1 without running
// them. On start-up failure it prints the logs and returns 1. After the
// tests it stops the environment; the run dir is removed when all passed.
func Main(m *testing.M, opts Options, envp **Env) int {
	if opts.Logf == nil {
		opts.Logf = func(f string, a ...any) { fmt.Fprintf(os.Stderr, f+"\n", a...) }
	}
	ctx, cancel := context.WithTimeout(context.Background(), StartTimeout)
	env, err := Start(ctx, opts)
	cancel()
	if errors.Is(err, ErrBinariesMissing) {
		if InCI() {
			fmt.Fprintf(os.Stderr, "FAIL: CI: %v\n", err)
			return 1
		}
		missingReason = err.Error()
		return m.Run()
	}
	if err != nil {
		if env != nil {
			env.DumpLogs(os.Stderr, 40)
		}
		fmt.Fprintf(os.Stderr, "FAIL: %v\n", err)
		return 1
	}
	*envp = env
	code := m.Run()
	if code != 0 {
		env.DumpLogs(os.Stderr, 60)
		fmt.Fprintf(os.Stderr, "harness: logs kept in %s\n", env.RunDir)
	}
	if err := env.Stop(); err != nil {
		fmt.Fprintf(os.Stderr, "harness: stop: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	if code == 0 && opts.RunDir == "" {
		_ = os.RemoveAll(env.RunDir)
	}
	return code
}

var missingReason string

// Need skips (or, under CI, fails) a test when Main could not start the
// shared environment because the binaries are missing.
func Need(t testing.TB, env *Env) {
	t.Helper()
	if env != nil {
		return
	}
	reason := missingReason
	if reason == "" {
		reason = "harness.Main did not start an environment"
	}
	if InCI() {
		t.Fatalf("CI: %s", reason)
	}
	t.Skipf("skipping e2e: %s", reason)
}

// BuildBinary compiles the main package pkg (an import path or a
// ./relative path from the repository root, e.g. "./cmd/autoscaler") into
// dir and returns the binary's path. Compile errors fail the test.
func BuildBinary(t testing.TB, pkg, dir string) string {
	t.Helper()
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, filepath.Base(pkg))
	cmd := exec.Command("go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", pkg, err, b)
	}
	return out
}
