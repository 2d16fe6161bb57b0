package local

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/infadapter/infadapter/pkg/oip"
)

func newBackend(t *testing.T, cfg Config) *Backend {
	t.Helper()
	b, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Logf("enforcement: %s", b.Enforcement())
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

func alive(pid int) bool {
	// Signal 0 probes existence; a zombie would still count, but our
	// children are reaped by cmd.Wait.
	return syscall.Kill(pid, 0) == nil
}

func infer(t *testing.T, url, model string) error {
	return inferBatch(t, url, model, 1)
}

// inferBatch sends n images in one request (each runs at batch 1 in the
// server, so the server does n inferences for one cheap client request).
func inferBatch(t *testing.T, url, model string, n int) error {
	t.Helper()
	body, _ := json.Marshal(oip.InferRequest{Inputs: []oip.Tensor{oip.NewFP32("input", []int64{int64(n), 1, 28, 28}, make([]float32, n*784))}})
	resp, err := http.Post(url+oip.InferPath(model), "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

func find(sts []Status, name string, current bool) (Status, bool) {
	for _, s := range sts {
		if s.Name == name && s.Current == current {
			return s, true
		}
	}
	return Status{}, false
}

func TestStartStopResize(t *testing.T) {
	needORT(t)
	b := newBackend(t, testConfig(t))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lin := modelPath(t, "linear")

	sts, err := b.Apply(ctx, []Instance{{Name: "a", Model: lin, MilliCores: 500}, {Name: "b", Model: lin, MilliCores: 1000}})
	if err != nil {
		t.Fatalf("Apply: %v", err)
	}
	if len(sts) != 2 {
		t.Fatalf("want 2 instances, got %+v", sts)
	}
	for _, s := range sts {
		if s.State != StateReady || !s.Current || s.PID == 0 {
			t.Errorf("instance %s not ready/current: %+v", s.Name, s)
		}
		if err := infer(t, s.URL, s.Name); err != nil {
			t.Errorf("infer on %s: %v", s.Name, err)
		}
		if !b.Ready(s.Name) {
			t.Errorf("Ready(%s) = false", s.Name)
		}
	}
	a0, _ := find(sts, "a", true)
	b0, _ := find(sts, "b", true)

	// Resize a: in place under a quota (same pid), else create-before-delete.
	sts, err = b.Ensure(ctx, []Instance{{Name: "a", Model: lin, MilliCores: 1500}, {Name: "b", Model: lin, MilliCores: 1000}})
	if err != nil {
		t.Fatalf("Ensure resize: %v", err)
	}
	a1, _ := find(sts, "a", true)
	if a1.MilliCores != 1500 || a1.State != StateReady {
		t.Fatalf("resized a: %+v", a1)
	}
	if b.Enforcement().Live {
		if a1.PID != a0.PID || a1.ID != a0.ID {
			t.Errorf("live enforcement: want in-place resize (pid %d), got new process %+v", a0.PID, a1)
		}
	} else {
		if a1.PID == a0.PID {
			t.Errorf("non-live enforcement: want a new process, got the same pid")
		}
		old, ok := find(sts, "a", false)
		if !ok || !alive(old.PID) {
			t.Errorf("old a must keep running until Prune: %+v", sts)
		}
		if err := infer(t, old.URL, "a"); err != nil {
			t.Errorf("old a stopped serving before Prune: %v", err)
		}
	}

	// Drop b: not current, still serving until Prune.
	sts, err = b.Ensure(ctx, []Instance{{Name: "a", Model: lin, MilliCores: 1500}})
	if err != nil {
		t.Fatalf("Ensure drop: %v", err)
	}
	bOld, ok := find(sts, "b", false)
	if !ok || bOld.PID != b0.PID {
		t.Fatalf("dropped b should be listed as not current: %+v", sts)
	}
	if err := infer(t, bOld.URL, "b"); err != nil {
		t.Errorf("dropped b must serve until Prune: %v", err)
	}
	if b.Ready("b") {
		t.Errorf("Ready(b) after drop = true")
	}
	if err := b.Prune(ctx); err != nil {
		t.Fatalf("Prune: %v", err)
	}
	if alive(b0.PID) {
		t.Errorf("b (pid %d) still alive after Prune", b0.PID)
	}
	if !b.Enforcement().Live && alive(a0.PID) {
		t.Errorf("old a (pid %d) still alive after Prune", a0.PID)
	}
	if got := b.Instances(); len(got) != 1 || got[0].Name != "a" {
		t.Errorf("after Prune want only a, got %+v", got)
	}
	pid := b.Instances()[0].PID
	if err := b.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if alive(pid) {
		t.Errorf("a (pid %d) alive after Close", pid)
	}
	if _, err := b.Ensure(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Ensure after Close: want ErrClosed, got %v", err)
	}
}

func TestCrashRestart(t *testing.T) {
	needORT(t)
	cfg := testConfig(t)
	cfg.BackoffMin = 50 * time.Millisecond
	b := newBackend(t, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sts, err := b.Apply(ctx, []Instance{{Name: "c", Model: modelPath(t, "linear"), MilliCores: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	s0 := sts[0]
	if err := syscall.Kill(s0.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	var s1 Status
	for time.Now().Before(deadline) {
		s1 = b.Instances()[0]
		if s1.Restarts == 1 && s1.State == StateReady {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s1.Restarts != 1 || s1.State != StateReady || s1.PID == s0.PID {
		t.Fatalf("after SIGKILL want a restarted ready process, got %+v", s1)
	}
	if !strings.Contains(s1.LastExit, "killed") {
		t.Errorf("LastExit = %q, want the kill reported", s1.LastExit)
	}
	if s1.URL != s0.URL || s1.ID != s0.ID {
		t.Errorf("restart changed identity: %s %s -> %s %s", s0.ID, s0.URL, s1.ID, s1.URL)
	}
	if err := infer(t, s1.URL, "c"); err != nil {
		t.Errorf("infer after restart: %v", err)
	}
}

func TestEnsureRejectsBadInput(t *testing.T) {
	b := &Backend{}
	_, err := b.Ensure(context.Background(), []Instance{
		{Name: "", Model: "x.onnx", MilliCores: 1000},
		{Name: "a/b", Model: "/nonexistent.onnx", MilliCores: 0},
		{Name: "d", Model: "/nonexistent.onnx", MilliCores: 100},
		{Name: "d", Model: "/nonexistent.onnx", MilliCores: 100},
	})
	if err == nil {
		t.Fatal("want an error")
	}
	for _, want := range []string{"instance 0", "instance 1", "milliCores = 0", "duplicate name", "nonexistent.onnx"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{Enforcement: "magic", PollInterval: -1, BackoffMin: time.Second, BackoffMax: time.Millisecond, CPUs: -1}.Validate()
	if err == nil {
		t.Fatal("want errors")
	}
	for _, want := range []string{"enforcement \"magic\"", "pollInterval", "backoffMax", "cpus"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

// cpuSeconds reads a process's user+system CPU time from /proc/<pid>/stat.
func cpuSeconds(t *testing.T, pid int) float64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	// Fields after the ")" that ends the command name: state is field 3,
	// utime 14 and stime 15 (1-based), in clock ticks (USER_HZ = 100).
	rest := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	ut, _ := strconv.ParseFloat(rest[11], 64)
	st, _ := strconv.ParseFloat(rest[12], 64)
	return (ut + st) / 100
}

// TestCPUEnforcement drives a CPU-bound server with more concurrent
// requests than it can serve and checks that its CPU use stays at its
// allocation: 0.5 cores under a quota, 1 core under affinity.
func TestCPUEnforcement(t *testing.T) {
	needORT(t)
	b := newBackend(t, testConfig(t))
	milli := 500
	if !b.Enforcement().Fractional {
		milli = 1000
	}
	if b.Enforcement().Mode == ModeNone {
		t.Skip("no CPU enforcement on this machine")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	sts, err := b.Apply(ctx, []Instance{{Name: "hot", Model: modelPath(t, "cnn-s"), MilliCores: milli}})
	if err != nil {
		t.Fatal(err)
	}
	s := sts[0]
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				_ = inferBatch(t, s.URL, "hot", 64)
			}
		}()
	}
	time.Sleep(500 * time.Millisecond)
	c0, t0 := cpuSeconds(t, s.PID), time.Now()
	time.Sleep(4 * time.Second)
	c1, t1 := cpuSeconds(t, s.PID), time.Now()
	close(stop)
	wg.Wait()
	used := (c1 - c0) / t1.Sub(t0).Seconds()
	want := float64(milli) / 1000
	t.Logf("mode %s: allocated %.2f cores, used %.3f cores", b.Enforcement().Mode, want, used)
	if ce, ok := b.enf.(*cgroupEnforcer); ok {
		st, _ := os.ReadFile(filepath.Join(ce.dir(s.ID), "cpu.stat"))
		t.Logf("cgroup cpu.stat: %s", strings.ReplaceAll(string(st), "\n", " "))
	}
	// The upper bound is what enforcement guarantees (tick accounting
	// adds a little); the lower bound only checks the server was busy —
	// on a shared 2-core box other work can take some of its share.
	if used > want*1.15+0.03 {
		t.Errorf("used %.3f cores, allocation %.2f is not enforced", used, want)
	}
	// The lower bound needs the machine to have CPU to give: skip it when
	// the run queue is far longer than the CPU count (shared build boxes).
	if load := loadAvg1(t); load > 2*float64(runtime.NumCPU()) {
		t.Logf("load average %.1f on %d CPUs: not checking that the server got its full share", load, runtime.NumCPU())
	} else if used < want*0.5 {
		t.Errorf("used only %.3f of %.2f cores: the load did not saturate the server", used, want)
	}
}

// TestAffinityCreateBeforeDelete forces affinity mode, where a resize
// must start a replacement and keep the old process until Prune.
func TestAffinityCreateBeforeDelete(t *testing.T) {
	needORT(t)
	cfg := testConfig(t)
	cfg.Enforcement = ModeAffinity
	b := newBackend(t, cfg)
	if e := b.Enforcement(); e.Mode != ModeAffinity || e.Live || e.Fractional {
		t.Fatalf("enforcement = %+v", e)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	lin := modelPath(t, "linear")
	sts, err := b.Apply(ctx, []Instance{{Name: "a", Model: lin, MilliCores: 1000}})
	if err != nil {
		t.Fatal(err)
	}
	a0 := sts[0]
	if a0.Threads != 1 {
		t.Errorf("1 core under affinity: want 1 thread, got %d", a0.Threads)
	}
	if got := affinityCount(t, a0.PID); got != 1 {
		t.Errorf("1 core: process may run on %d CPUs, want 1", got)
	}
	sts, err = b.Ensure(ctx, []Instance{{Name: "a", Model: lin, MilliCores: 2000}})
	if err != nil {
		t.Fatal(err)
	}
	a1, _ := find(sts, "a", true)
	old, ok := find(sts, "a", false)
	if !ok || old.PID != a0.PID || a1.PID == a0.PID || a1.ID == a0.ID || a1.URL == a0.URL {
		t.Fatalf("want a new current process and the old one retiring: %+v", sts)
	}
	if a1.State != StateReady {
		t.Errorf("Ensure returned before the replacement was ready: %+v", a1)
	}
	if want := min(2, runtime.NumCPU()); affinityCount(t, a1.PID) != want || a1.Threads != want {
		t.Errorf("2 cores: affinity %d CPUs, %d threads; want %d", affinityCount(t, a1.PID), a1.Threads, want)
	}
	if err := infer(t, old.URL, "a"); err != nil {
		t.Errorf("old process must serve until Prune: %v", err)
	}
	if err := b.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if alive(a0.PID) {
		t.Errorf("old process %d alive after Prune", a0.PID)
	}
}

func affinityCount(t *testing.T, pid int) int {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(pid, &set); err != nil {
		t.Fatal(err)
	}
	return set.Count()
}

// TestNoOrphans kills a backend process with SIGKILL and checks that its
// server process dies with it (Pdeathsig), and that Close removes the
// cgroups of a cleanly closed backend.
func TestNoOrphans(t *testing.T) {
	needORT(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envBackend+"="+modelPath(t, "linear"))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = testWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("reading child's output: %v", err)
	}
	var child int
	if _, err := fmt.Sscanf(line, "pid %d", &child); err != nil {
		t.Fatalf("backend said %q", line)
	}
	if !alive(child) {
		t.Fatalf("server %d not running", child)
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for alive(child) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if alive(child) {
		_ = syscall.Kill(child, syscall.SIGKILL)
		t.Fatalf("server %d outlived its killed backend", child)
	}

	// Clean path: Close removes the groups.
	b, err := New(testConfig(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.Apply(ctx, []Instance{{Name: "x", Model: modelPath(t, "linear"), MilliCores: 300}}); err != nil {
		t.Fatal(err)
	}
	ce, isCgroup := b.enf.(*cgroupEnforcer)
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if isCgroup {
		if _, err := os.Stat(ce.parent); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("cgroup %s still exists after Close (%v)", ce.parent, err)
		}
	}
}

func loadAvg1(t *testing.T) float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		t.Fatal(err)
	}
	v, _ := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	return v
}

func TestReserveCPU(t *testing.T) {
	b := newBackend(t, testConfig(t))
	w, err := b.ReserveCPU(1.5)
	if err != nil {
		t.Fatal(err)
	}
	c, ok := b.enf.(*cgroupEnforcer)
	if !ok {
		if w != "" {
			t.Fatalf("%s enforcement: want no weight, got %q", b.Enforcement().Mode, w)
		}
		t.Skipf("%s enforcement has no cgroup weight", b.Enforcement().Mode)
	}
	file, want := "cpu.shares", "12288" // 1024 × 8 × 1.5
	if c.v2 {
		file, want = "cpu.weight", "1200" // 100 × 8 × 1.5
	}
	got, err := os.ReadFile(filepath.Join(c.parent, file))
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(got)) != want || w != file+"="+want {
		t.Fatalf("%s = %q (reported %q), want %s", file, got, w, want)
	}
}
