package profiler

import (
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/loadgen"
)

func TestMaxWindowP99(t *testing.T) {
	ms := time.Millisecond
	mk := func(at time.Duration, lat time.Duration, err string) loadgen.Result {
		return loadgen.Result{Intended: at, Latency: lat, Err: err}
	}
	var calm, spiky, failing []loadgen.Result
	for i := 0; i < 400; i++ {
		at := time.Duration(i) * 10 * ms // 4 s → two 2 s windows
		calm = append(calm, mk(at, 5*ms, ""))
		l := 5 * ms
		if i >= 200 && i < 210 { // 10 of the second window's 200: 5 % slow
			l = 80 * ms
		}
		spiky = append(spiky, mk(at, l, ""))
		e := ""
		if i >= 200 && i < 205 { // 2.5 % failures in window 2
			e = "timeout"
		}
		failing = append(failing, mk(at, 5*ms, e))
	}
	cases := []struct {
		name string
		in   []loadgen.Result
		want time.Duration
	}{
		{"calm", calm, 5 * ms},
		// 5 % slow in one window: its P99 is slow, and the max picks it
		// although over the whole run they are 2.5 %.
		{"spike in one window", spiky, 80 * ms},
		{"failures are infinitely slow", failing, time.Duration(math.MaxInt64)},
		{"empty", nil, time.Duration(math.MaxInt64)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := MaxWindowP99(c.in, 2*time.Second); got != c.want {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
	// 1 % of failures in a window of 100 is still within its P99.
	var edge []loadgen.Result
	for i := 0; i < 100; i++ {
		e := ""
		if i == 50 {
			e = "http-500"
		}
		edge = append(edge, mk(time.Duration(i)*10*ms, time.Duration(i%10+1)*ms, e))
	}
	if got := MaxWindowP99(edge, 2*time.Second); got != 10*ms {
		t.Errorf("one failure in 100: P99 = %v, want 10ms", got)
	}
}

func TestConfigValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	c := Config{SLO: 0, ProbeDuration: time.Millisecond, Repeats: 0, Lo: 1, Hi: 0.5, Steps: 0, Tolerance: -1, MaxRPS: -1}
	err := c.Validate()
	for _, w := range []string{"slo", "probeDuration", "peakDuration", "peakClients", "window", "repeats", "lo = 1", "steps", "tolerance", "maxRps"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("Validate() = %v; want it to mention %q", err, w)
		}
	}
}

// queueServer is a real HTTP server with one worker and a fixed service
// time: its capacity under an SLO is known from queueing theory.
func queueServer(service time.Duration) *httptest.Server {
	sem := make(chan struct{}, 1)
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		sem <- struct{}{}
		time.Sleep(service)
		<-sem
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"model_name":"q","outputs":[{"name":"logits","shape":[1,1],"datatype":"FP32","data":[1]}]}`)
	}))
}

func TestCapacitySearch(t *testing.T) {
	if testing.Short() {
		t.Skip("runs load for several seconds")
	}
	srv := queueServer(4 * time.Millisecond) // ≤ 250 rps
	defer srv.Close()
	cfg := Default()
	// Generous against scheduling noise on a loaded shared machine, still
	// far below what an overloaded queue produces (seconds).
	cfg.SLO = 250 * time.Millisecond
	cfg.ProbeDuration = 2 * time.Second
	cfg.PeakDuration = time.Second
	cfg.Repeats = 1
	cfg.Steps = 4
	var msgs []string
	p, err := New(cfg, func(m string) { msgs = append(msgs, m) })
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Capacity(context.Background(), Target{URL: srv.URL, Model: "q"}, "q")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("peak %.0f, capacity %.0f, probes %+v", res.PeakRPS, res.Capacity, res.Probes)
	// Sleep granularity makes the service time ≥ 4 ms: peak ≤ 250 rps.
	if res.PeakRPS > 260 || res.PeakRPS < 60 {
		t.Errorf("peak %.0f rps, want ≤ 250 (one worker, 4 ms each)", res.PeakRPS)
	}
	// The paper's search runs over [0.3, 1.2]·peak, so capacity may exceed
	// a (noisy, closed-loop) peak measurement — the paper's own ResNet18 at
	// 8 cores has capacity 190 over saturation 168 — but never the search's
	// upper end, nor what one 4 ms worker can sustain over a 2 s probe
	// within the SLO (≈ 250 rps plus a short queue).
	if res.Capacity <= 0 || res.Capacity > res.PeakRPS*1.2+1 || res.Capacity > 300 {
		t.Errorf("capacity %.0f outside (0, min(1.2·peak = %.0f, 300)]", res.Capacity, 1.2*res.PeakRPS)
	}
	if len(res.Probes) < 2 || len(msgs) != len(res.Probes)+1 {
		t.Errorf("want a search with progress per run: %d probes, %d messages", len(res.Probes), len(msgs))
	}
	for _, pr := range res.Probes {
		if pr.Pass != (pr.P99MaxMs >= 0 && pr.P99MaxMs <= 250) {
			t.Errorf("probe %+v judged inconsistently", pr)
		}
	}
}

func TestCapacityZeroWhenSLOTooTight(t *testing.T) {
	srv := queueServer(30 * time.Millisecond)
	defer srv.Close()
	cfg := Default()
	cfg.SLO = 10 * time.Millisecond
	cfg.ProbeDuration = time.Second
	cfg.PeakDuration = 500 * time.Millisecond
	cfg.Repeats = 1
	cfg.Steps = 3
	p, _ := New(cfg, nil)
	res, err := p.Capacity(context.Background(), Target{URL: srv.URL, Model: "q"}, "q")
	if err != nil {
		t.Fatal(err)
	}
	if res.Capacity != 0 || len(res.Probes) < 2 {
		t.Errorf("30 ms service, 10 ms SLO: want capacity 0 after a search below lo·peak, got %+v", res)
	}
	for _, pr := range res.Probes {
		if pr.Pass {
			t.Errorf("probe %+v passed a 10 ms SLO with a 30 ms service time", pr)
		}
	}
}

func TestPeakReportsDeadEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", 500) }))
	defer srv.Close()
	cfg := Default()
	cfg.PeakDuration = 200 * time.Millisecond
	p, _ := New(cfg, nil)
	if _, err := p.Peak(context.Background(), Target{URL: srv.URL, Model: "q"}); err == nil || !strings.Contains(err.Error(), "HTTP 500") {
		t.Errorf("want an error naming HTTP 500, got %v", err)
	}
}
