package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/dashboard"
	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/loop"
)

// chromiumFlags are the flags headless Chromium needs on this machine (no
// sandbox as root, no network beyond the test server).
func chromiumFlags(userData string) []string {
	return []string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--hide-scrollbars", "--user-data-dir=" + userData,
	}
}

// findChromium returns the browser binary ($CHROMIUM, else chromium on
// PATH). Absent: skip locally, fail in CI (which installs it from
// hack/apt-packages.txt).
func findChromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "headless Chromium not found (apt-get install -y chromium, or set CHROMIUM)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// liveSource is a fake dashboard.Source whose values change after the first
// poll, so the test can tell a page that polls from one that rendered once.
type liveSource struct{ calls atomic.Int64 }

func (s *liveSource) State() dashboard.State {
	n := s.calls.Add(1)
	mk := func(t, rps, p99 float64, shareM float64) dashboard.Sample {
		return dashboard.Sample{
			T: t, RPS: rps, Forecast: 130, P99Millis: p99, Cores: 2,
			CoresBy:        map[string]float64{"cnn-m": 1.5, "mlp": 0.5},
			ShareBy:        map[string]float64{"cnn-m": shareM, "mlp": 1 - shareM},
			ServedAccuracy: 0.9123, PlannedAccuracy: 0.91,
		}
	}
	st := dashboard.State{
		Time: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), Stage: "infadapter", Policy: "infadapter",
		SLOMillis: 50, BudgetCores: 2, Elapsed: 42, Duration: 180,
		Series: []dashboard.Sample{mk(1, 80, 20, 0.6), mk(2, 90, 25, 0.6)},
		Variants: []dashboard.Variant{
			{Name: "cnn-m", Accuracy: 0.9282, Cores: 1.5, Share: 0.625},
			{Name: "mlp", Accuracy: 0.8855, Cores: 0.5, Share: 0.375},
			{Name: "linear", Accuracy: 0.8423},
		},
		Totals: dashboard.Totals{Policy: "infadapter", Requests: 4321, Violations: 54, ViolationPct: 1.25,
			P99Millis: 33.3, ServedAccuracy: 0.9123, PlannedAccuracy: 0.91, AvgCores: 1.8},
		Finished: []dashboard.Totals{{Policy: "static-cnn-m", Requests: 4000, ViolationPct: 17.5, P99Millis: 812.5,
			ServedAccuracy: 0.9282, PlannedAccuracy: 0.9282, AvgCores: 2}},
	}
	if n > 1 { // every later poll: a new second arrived
		st.Series = append(st.Series, mk(3, 123.4, 456.7, 0.625))
		st.Totals.P99Millis = 456.7
	}
	return st
}

func TestDashboardInHeadlessChromium(t *testing.T) {
	browser := findChromium(t)

	// A real journal with real decisions behind /api/decisions.
	j := loop.NewJournal(nil, 10)
	j.Record(loop.Decision{Seq: 7, Time: time.Date(2026, 11, 27, 12, 0, 5, 0, time.UTC), Policy: "infadapter",
		Forecast: 130, Objective: 0.8765, Result: loop.ResultApplied,
		Plan: decider.Plan{Variants: []decider.VariantState{
			{Name: "cnn-m", Cores: 3, Replicas: 1, Share: 0.625}, {Name: "mlp", Cores: 1, Replicas: 1, Share: 0.375}}},
		Timings: loop.Timings{ForecastMillis: 0.12, SolveMillis: 1.5, ApplyMillis: 850}})
	src := &liveSource{}
	srv := httptest.NewServer(dashboard.Handler(src, j))
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dir := t.TempDir()
	// --virtual-time-budget lets the page's timers (1 s polling) run for 4 s
	// of virtual time before the DOM is dumped.
	dom := dumpDOM(t, ctx, browser, filepath.Join(dir, "profile-dom"), 4000, srv.URL+"/")
	if src.calls.Load() < 2 {
		t.Errorf("page polled /api/state %d times in 4 s of virtual time, want >= 2", src.calls.Load())
	}

	tile := func(id string) string {
		m := regexp.MustCompile(`id="` + id + `"[^>]*>([^<]*)<`).FindStringSubmatch(dom)
		if m == nil {
			t.Errorf("element #%s not in the DOM", id)
			return ""
		}
		return m[1]
	}
	for id, want := range map[string]string{
		"stat-rps":        "123.4", // only in the second and later polls
		"stat-forecast":   "130.0",
		"stat-p99":        "456.7",
		"stat-violations": "1.25",
		"stat-accuracy":   "91.23%",
		"stat-planned":    "planned 91.00%",
		"stat-cores":      "2.00",
		"stat-slo":        "ms (SLO 50 ms)",
		"stage":           "infadapter · infadapter",
		"progress":        "42 / 180 s",
	} {
		if got := tile(id); got != want {
			t.Errorf("#%s = %q, want %q", id, got, want)
		}
	}
	// P99 above the SLO is flagged.
	if !regexp.MustCompile(`class="v bad" id="stat-p99"|id="stat-p99" class="v bad"`).MatchString(dom) {
		t.Errorf("#stat-p99 is not marked bad although 456.7 ms > SLO 50 ms")
	}
	// Variants table: one row per variant with cores and share.
	for _, want := range []string{
		`data-variant="cnn-m"`, `cnn-m</td><td>92.82%</td><td>1.50</td><td>62.5%</td>`,
		`mlp</td><td>88.55%</td><td>0.50</td><td>37.5%</td>`,
		`linear</td><td>84.23%</td><td>off</td><td>–</td>`,
		// Runs table: the finished baseline and the live run.
		`<td>static-cnn-m</td><td>4000</td><td>17.50%</td><td>812.5</td>`,
		`<td>infadapter (running)</td><td>4321</td><td>1.25%</td>`,
		// Decisions table from the real journal.
		`<td>7</td>`, `cnn-m:3c/63% mlp:1c/38%`, `<td>0.8765</td>`, `0.12 / 1.50 / 850`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q", want)
		}
	}
	// Charts are drawn: every chart has at least one data path, and the
	// P99 chart carries the SLO line label.
	for _, id := range []string{"chart-load", "chart-p99", "chart-cores", "chart-share", "chart-acc"} {
		m := regexp.MustCompile(`(?s)<svg id="` + id + `"[^>]*>(.*?)</svg>`).FindStringSubmatch(dom)
		if m == nil || !strings.Contains(m[1], "<path") {
			t.Errorf("chart #%s has no drawn path", id)
		}
	}
	if !strings.Contains(dom, "SLO 50 ms</text>") {
		t.Errorf("P99 chart lacks the SLO line label")
	}

	// A screenshot, for humans (kept when DASHBOARD_SCREENSHOT names a file).
	shot := os.Getenv("DASHBOARD_SCREENSHOT")
	if shot == "" {
		shot = filepath.Join(dir, "dashboard.png")
	}
	args := append(chromiumFlags(filepath.Join(dir, "profile-shot")), "--virtual-time-budget=3000",
		"--window-size=1400,1300", "--screenshot="+shot, srv.URL+"/")
	cmd := exec.CommandContext(ctx, browser, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("chromium --screenshot: %v\n%s", err, out)
	}
	png, err := os.ReadFile(shot)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(png, []byte("\x89PNG")) || len(png) < 20_000 {
		t.Errorf("screenshot %s: %d bytes, not a plausible rendered page", shot, len(png))
	}
}

// publishedSource is a dashboard of a family without labels (the
// random-weight ResNets): accuracies are published, served accuracy is
// not measured.
type publishedSource struct{}

func (publishedSource) State() dashboard.State {
	return dashboard.State{
		Time: time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC), Stage: "infadapter", Policy: "infadapter",
		SLOMillis: 750, BudgetCores: 1, Elapsed: 10, Duration: 150,
		Series: []dashboard.Sample{{T: 1, RPS: 3, Forecast: 4, P99Millis: 300, Cores: 1,
			CoresBy: map[string]float64{"resnet50": 1}, ShareBy: map[string]float64{"resnet50": 1}, PlannedAccuracy: 0.7613}},
		Variants:     []dashboard.Variant{{Name: "resnet50", Accuracy: 0.7613, Cores: 1, Share: 1}, {Name: "resnet18", Accuracy: 0.69758}},
		Totals:       dashboard.Totals{Policy: "infadapter", Requests: 30, PlannedAccuracy: 0.7613, AvgCores: 1},
		Finished:     []dashboard.Totals{{Policy: "static-resnet152", Requests: 30, ViolationPct: 80, PlannedAccuracy: 0.78312, AvgCores: 1}},
		AccuracyNote: "served accuracy not measured: random inputs, no labels; planned and routed accuracy are published, not measured",
	}
}

// TestDashboardPublishedAccuracy: with an accuracy note the page shows
// "not measured" instead of a served figure and labels every accuracy it
// shows as published.
func TestDashboardPublishedAccuracy(t *testing.T) {
	browser := findChromium(t)
	srv := httptest.NewServer(dashboard.Handler(publishedSource{}, loop.NewJournal(nil, 10)))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	dom := dumpDOM(t, ctx, browser, filepath.Join(t.TempDir(), "profile"), 3000, srv.URL+"/")
	for _, want := range []string{
		`id="stat-accuracy">not measured<`,
		`id="stat-planned">planned 76.13% (published, not measured)<`,
		`resnet50</td><td>76.13% (published, not measured)</td>`,
		`resnet18</td><td>69.76% (published, not measured)</td>`,
		`<td>static-resnet152</td><td>30</td><td>80.00%</td><td>0.0</td><td>not measured</td><td>78.31% (published)</td>`,
		"no labels; planned and routed accuracy are published, not measured",
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("DOM lacks %q", want)
		}
	}
}

// dumpDOM loads url in headless Chromium (user data in profileDir), lets
// its timers run for budgetMs of virtual time and returns the DOM.
func dumpDOM(t *testing.T, ctx context.Context, browser, profileDir string, budgetMs int, url string) string {
	t.Helper()
	args := append(chromiumFlags(profileDir), fmt.Sprintf("--virtual-time-budget=%d", budgetMs), "--dump-dom", url)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, browser, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v\n%s", err, stderr.String())
	}
	return string(out)
}
