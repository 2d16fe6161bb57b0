package loadgen

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/infadapter/infadapter/pkg/dataset/fashionmnist"
	"github.com/infadapter/infadapter/pkg/dispatcher"
	"github.com/infadapter/infadapter/pkg/oip"
)

func TestParseSteps(t *testing.T) {
	got, err := ParseSteps("2x2, 5x1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]float64{2, 2, 5}, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	for _, bad := range []string{"", "5", "x3", "5x0", "-1x3", "5xz", "nanx3"} {
		if _, err := ParseSteps(bad); err == nil {
			t.Errorf("ParseSteps(%q) accepted", bad)
		}
	}
	if _, err := Constant(0, 3); err == nil {
		t.Error("Constant(0) accepted")
	}
}

func FuzzParseSteps(f *testing.F) {
	for _, s := range []string{"10x30,50x30", "1x1", "x", ",", "1e308x2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 64 {
			return // keep schedules small
		}
		_, _ = ParseSteps(s)
	})
}

// oneHotServer answers OIP v2 with logits peaking at int(first input
// value) when it is < 7, else at 0: the served accuracy over labels 0..9
// encoded as the first value is then 7/10 + (label 0 already counted).
func oneHotServer(t *testing.T, variant string, delay *atomic.Int64) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == oip.ServerReadyPath {
			return
		}
		if d := delay; d != nil && d.Load() > 0 {
			time.Sleep(time.Duration(d.Load()))
		}
		body, _ := io.ReadAll(r.Body)
		req, err := oip.DecodeInferRequest(body)
		if err != nil {
			oip.WriteError(w, 400, err.Error())
			return
		}
		x, _ := req.Inputs[0].Float32s()
		logits := make([]float32, 10)
		if k := int(x[0]); k < 7 {
			logits[k] = 1
		} else {
			logits[0] = 1
		}
		w.Header().Set(oip.VariantHeader, variant)
		oip.WriteJSON(w, 200, oip.InferResponse{ModelName: variant, Outputs: []oip.Tensor{oip.NewFP32("logits", []int64{1, 10}, logits)}})
	}))
	t.Cleanup(srv.Close)
	return srv
}

func labelledSamples(t *testing.T) Samples {
	var s Samples
	for l := range 10 {
		b, err := Encode(ProtocolV2, []int64{2}, []float32{float32(l), 0})
		if err != nil {
			t.Fatal(err)
		}
		s = append(s, Sample{Body: b, Label: l})
	}
	return s
}

func testConfig(target string) Config {
	c := Default()
	c.Target = target
	c.Model = "m"
	c.SLO = 500 * time.Millisecond
	return c
}

// TestRunThroughDispatcher replays 3 s at 100 RPS through a real dispatcher
// to two variants and checks counts, accuracy and the per-variant split.
func TestRunThroughDispatcher(t *testing.T) {
	a, b := oneHotServer(t, "a", nil), oneHotServer(t, "b", nil)
	cfg := dispatcher.Default()
	cfg.HealthInterval = 0
	d, err := dispatcher.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if err := d.SetBackends("m", []dispatcher.Backend{{Variant: "a", URL: a.URL, Weight: 3}, {Variant: "b", URL: b.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(d)
	defer front.Close()
	lc := testConfig(front.URL)
	lc.Arrivals = "exact"
	var progress atomic.Int64
	r, err := NewRunner(lc, labelledSamples(t), WithProgress(func(done, total int) { progress.Store(int64(done)) }))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sched, _ := Constant(100, 3)
	rep, res, err := r.Run(context.Background(), sched)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Offered != 300 || rep.OK != 300 || len(res) != 300 || progress.Load() != 300 {
		t.Fatalf("offered %d ok %d results %d progress %d errors %v; want 300 each", rep.Offered, rep.OK, len(res), progress.Load(), rep.Errors)
	}
	// Samples cycle through labels 0..9; labels 0..6 are answered right.
	if rep.Accuracy == nil || *rep.Accuracy != 0.7 {
		t.Errorf("accuracy = %v, want 0.7", rep.Accuracy)
	}
	if diff := cmp.Diff(map[string]int{"a": 225, "b": 75}, rep.PerVariant); diff != "" {
		t.Errorf("per variant (-want +got):\n%s", diff)
	}
	if rep.AchievedRPS != 100 || len(rep.PerSecond) != 3 || rep.PerSecond[1].Sent != 100 {
		t.Errorf("achieved %v, per second %+v", rep.AchievedRPS, rep.PerSecond)
	}
	if !(rep.Latency.P50 > 0 && rep.Latency.P50 <= rep.Latency.P99) {
		t.Errorf("latency %+v", rep.Latency)
	}
}

// TestNoCoordinatedOmission: the backend stalls every request for 1 s
// between 0.5 s and 1.5 s into the run. An open-loop generator keeps
// sending at 100 RPS during the stall, and latency measured from the
// intended time grows with how early in the stall a request was planned:
// ~1 s for the first, ~0 for the last. A closed-loop generator would have
// recorded a single slow request. Requests planned outside the stall stay
// fast.
func TestNoCoordinatedOmission(t *testing.T) {
	var stallUntil atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if u := stallUntil.Load(); u > 0 {
			time.Sleep(time.Until(time.Unix(0, u)))
		}
		oip.WriteJSON(w, 200, oip.InferResponse{ModelName: "m", Outputs: []oip.Tensor{oip.NewFP32("y", []int64{1, 1}, []float32{1})}})
	}))
	defer srv.Close()
	cfg := testConfig(srv.URL)
	cfg.Arrivals = "even"
	src, _ := Zeros(ProtocolV2, []int64{4})
	r, err := NewRunner(cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go func() {
		time.Sleep(500 * time.Millisecond)
		stallUntil.Store(time.Now().Add(time.Second).UnixNano())
		time.Sleep(1100 * time.Millisecond)
		stallUntil.Store(0)
	}()
	sched, _ := Constant(100, 3)
	rep, res, err := r.Run(context.Background(), sched)
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK != 300 {
		t.Fatalf("ok %d of %d, errors %v", rep.OK, rep.Offered, rep.Errors)
	}
	// Requests planned in [0.6 s, 1.4 s) all fall in the stall.
	var early, late time.Duration
	var stalled int
	for _, x := range res {
		if x.Intended >= 600*time.Millisecond && x.Intended < 1400*time.Millisecond {
			stalled++
			if x.Latency < 50*time.Millisecond {
				t.Errorf("request planned at %v during the stall took only %v", x.Intended, x.Latency)
			}
		}
		if x.Intended >= 600*time.Millisecond && x.Intended < 700*time.Millisecond {
			early = max(early, x.Latency)
		}
		if x.Intended >= 1300*time.Millisecond && x.Intended < 1400*time.Millisecond {
			late = max(late, x.Latency)
		}
	}
	if stalled < 70 {
		t.Errorf("only %d requests planned during the stall; the generator did not keep sending", stalled)
	}
	if !(early > late+400*time.Millisecond) {
		t.Errorf("latency from intended time must shrink across the stall: planned at 0.6 s → %v, at 1.3 s → %v", early, late)
	}
	if rep.Latency.P95 < 400 || rep.SLOViolations < 20 {
		t.Errorf("P95 %.0f ms, %d SLO violations: the stall is hidden", rep.Latency.P95, rep.SLOViolations)
	}
}

func TestErrorKinds(t *testing.T) {
	// A port nobody listens on: connection refused.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + l.Addr().String()
	l.Close()
	src, _ := Zeros(ProtocolV2, []int64{1})
	sched, _ := Constant(20, 1)
	run := func(cfg Config) *Report {
		t.Helper()
		r, err := NewRunner(cfg, src)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		rep, _, err := r.Run(context.Background(), sched)
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	rep := run(testConfig(dead))
	if rep.Errors[ErrConnRefused] != rep.Offered || rep.SLOViolationPct != 100 {
		t.Errorf("dead target: errors %v of %d, violations %.0f%%", rep.Errors, rep.Offered, rep.SLOViolationPct)
	}
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "bad") {
			oip.WriteError(w, 404, "no")
			return
		}
		select {
		case <-time.After(2 * time.Second):
		case <-r.Context().Done():
		}
	}))
	defer slow.Close()
	cfg := testConfig(slow.URL)
	cfg.Timeout = 50 * time.Millisecond
	if rep := run(cfg); rep.Errors[ErrTimeout] != rep.Offered {
		t.Errorf("slow target: errors %v of %d, want all timeouts", rep.Errors, rep.Offered)
	}
	cfg = testConfig(slow.URL)
	cfg.Model = "bad"
	if rep := run(cfg); rep.Errors[ErrHTTP4xx] != rep.Offered {
		t.Errorf("404 target: errors %v of %d", rep.Errors, rep.Offered)
	}
}

func TestOverloadBounded(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	cfg := testConfig(srv.URL)
	cfg.MaxInFlight = 5
	cfg.Timeout = 300 * time.Millisecond
	src, _ := Zeros(ProtocolV2, []int64{1})
	r, err := NewRunner(cfg, src)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	sched, _ := Constant(50, 1)
	rep, _, err := r.Run(context.Background(), sched)
	if err != nil {
		t.Fatal(err)
	}
	// At most 5 are in flight; each holds its slot for the 300 ms timeout,
	// so at most 5 × ceil(1.3 s / 0.3 s) = 25 were sent and the rest are
	// overload errors, without the generator blocking.
	if rep.Errors[ErrOverload] < 25 || rep.Errors[ErrTimeout] > 25 || rep.Errors[ErrOverload]+rep.Errors[ErrTimeout] != rep.Offered {
		t.Errorf("errors %v of %d: want overload errors beyond 5 in flight", rep.Errors, rep.Offered)
	}
}

func TestConfigValidate(t *testing.T) {
	err := Config{}.Validate()
	for _, want := range []string{"target", "model", "protocol", "slo", "timeout", "maxRequests", "maxInFlight"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v; want it to mention %q", err, want)
		}
	}
}

// TestFashionMNISTSamples encodes real test images; the model-server
// accuracy path depends on this encoding.
func TestFashionMNISTSamples(t *testing.T) {
	set, err := fashionmnist.Load("", fashionmnist.Test, 20)
	if errors.Is(err, fashionmnist.ErrNotInstalled) {
		if os.Getenv("CI") != "" {
			t.Fatalf("CI must install dataset-fashion-mnist: %v", err)
		}
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []Protocol{ProtocolV2, ProtocolTF} {
		s, err := FashionMNIST(p, set, 0)
		if err != nil {
			t.Fatal(err)
		}
		if s.Len() != 20 || s.Sample(3).Label != int(set.Labels[3]) {
			t.Fatalf("%s: %d samples", p, s.Len())
		}
		var rows [][]float32
		if p == ProtocolV2 {
			req, err := oip.DecodeInferRequest(s[0].Body)
			if err != nil {
				t.Fatal(err)
			}
			v, _ := req.Inputs[0].Float32s()
			rows = [][]float32{v}
			if !cmp.Equal(req.Inputs[0].Shape, []int64{1, 1, 28, 28}) {
				t.Errorf("shape %v", req.Inputs[0].Shape)
			}
		} else {
			req, err := oip.DecodePredictRequest(s[0].Body)
			if err != nil {
				t.Fatal(err)
			}
			rows, err = req.Rows()
			if err != nil {
				t.Fatal(err)
			}
		}
		if len(rows) != 1 || !cmp.Equal(rows[0], set.Float32(0)) {
			t.Errorf("%s: body does not round-trip image 0", p)
		}
	}
}
