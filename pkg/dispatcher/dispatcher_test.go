package dispatcher

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clocktesting "k8s.io/utils/clock/testing"

	"github.com/infadapter/infadapter/pkg/loop"
	"github.com/infadapter/infadapter/pkg/oip"
)

const inferBody = `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`

// fakeBackend is a real HTTP server on loopback that answers OIP v2 like a
// model server for one model name, recording the paths it saw.
type fakeBackend struct {
	srv     *httptest.Server
	name    string
	hits    atomic.Int64
	delay   atomic.Int64 // nanoseconds per inference
	unready atomic.Bool
	mu      sync.Mutex
	paths   []string
}

func newFakeBackend(t *testing.T, name string) *fakeBackend {
	t.Helper()
	fb := &fakeBackend{name: name}
	fb.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == oip.ServerReadyPath {
			if fb.unready.Load() {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			oip.WriteJSON(w, 200, oip.ReadyResponse{Ready: true})
			return
		}
		fb.mu.Lock()
		fb.paths = append(fb.paths, r.URL.Path)
		fb.mu.Unlock()
		body, _ := io.ReadAll(r.Body)
		if _, err := oip.DecodeInferRequest(body); err != nil && r.URL.Path == oip.InferPath(name) {
			oip.WriteError(w, 400, err.Error())
			return
		}
		if d := time.Duration(fb.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-r.Context().Done():
				return
			}
		}
		fb.hits.Add(1)
		oip.WriteJSON(w, 200, oip.InferResponse{ModelName: name, Outputs: []oip.Tensor{oip.NewFP32("y", []int64{1, 1}, []float32{1})}})
	}))
	t.Cleanup(fb.srv.Close)
	return fb
}

var stdServer = flag.Bool("std-server", false, "serve the dispatcher in tests with net/http (httptest) instead of its fast-path Server")

// eventLoops > 0 serves the dispatcher in tests with its EventServer
// (Linux) on that many loops instead of Server.
var eventLoops = flag.Int("event-loops", 0, "serve the dispatcher in tests with its event-loop server on this many loops")

// testFront is the dispatcher's listening side in tests: its fast-path
// Server (default) or, with -std-server, net/http's via httptest.
type testFront struct {
	URL    string
	client *http.Client
	close  func()
}

func (f *testFront) Client() *http.Client { return f.client }
func (f *testFront) Close()               { f.close() }

func newTestDispatcher(t *testing.T, cfg Config, opts ...Option) (*Dispatcher, *testFront) {
	t.Helper()
	d, err := New(cfg, append([]Option{WithLogger(slog.New(slog.DiscardHandler))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	if *stdServer {
		srv := httptest.NewServer(d)
		t.Cleanup(srv.Close)
		return d, &testFront{URL: srv.URL, client: srv.Client(), close: srv.Close}
	}
	return d, startServer(t, d)
}

func startServer(t testing.TB, d *Dispatcher) *testFront {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := newTestServer(t, d)
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Serve(ln) }()
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	var once sync.Once
	f := &testFront{URL: "http://" + ln.Addr().String(), client: &http.Client{Transport: tr}, close: func() {
		once.Do(func() {
			// Like httptest.Server.Close: outstanding requests finish first.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			tr.CloseIdleConnections()
			if err := s.Shutdown(ctx); err != nil {
				t.Errorf("dispatcher server shutdown: %v", err)
			}
			<-done
		})
	}}
	t.Cleanup(f.Close)
	return f
}

// testServer is what startServer needs of Server and EventServer.
type testServer interface {
	Serve(net.Listener) error
	Shutdown(context.Context) error
}

// newTestServer is d's Server, or its EventServer with -event-loops.
func newTestServer(t testing.TB, d *Dispatcher) testServer {
	t.Helper()
	if *eventLoops > 0 {
		s, err := d.NewEventServer(ServerOptions{}, *eventLoops)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	return d.NewServer(ServerOptions{})
}

// noHealth is a config without the background health loop, so tests
// control health checks.
func noHealth() Config {
	c := Default()
	c.HealthInterval = 0
	return c
}

func infer(t *testing.T, c *http.Client, base, model string) (int, string) {
	t.Helper()
	resp, err := c.Post(base+oip.InferPath(model), "application/json", strings.NewReader(inferBody))
	if err != nil {
		t.Errorf("POST: %v", err)
		return 0, ""
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get(oip.VariantHeader)
}

func TestQuantize(t *testing.T) {
	tests := []struct {
		in   []float64
		want []int64
	}{
		{[]float64{0.25, 0.75}, []int64{1, 3}},
		{[]float64{5, 1, 1}, []int64{5, 1, 1}},
		{[]float64{0.5, 0, 0.5}, []int64{1, 0, 1}},
		{[]float64{1e-9, 1}, []int64{1, 10000}},
		{[]float64{1.0 / 3, 2.0 / 3}, []int64{1, 2}},
		{[]float64{0.5, 0.3, 0.2}, []int64{5, 3, 2}},
		{[]float64{0, 0}, []int64{0, 0}},
	}
	for _, tc := range tests {
		if diff := cmp.Diff(tc.want, quantize(tc.in)); diff != "" {
			t.Errorf("quantize(%v) (-want +got):\n%s", tc.in, diff)
		}
	}
}

// TestSWRRWindows: over every window of sum(weights) consecutive picks each
// peer is picked exactly its weight (±1 allowed by the issue; SWRR is exact
// on aligned windows and within ±1 on sliding ones), and nginx's sequence
// for 5,1,1 is reproduced.
func TestSWRRWindows(t *testing.T) {
	s := newSWRR([]int64{5, 1, 1})
	var seq []int
	for range 7 {
		seq = append(seq, s.next(func(int) bool { return true }))
	}
	if diff := cmp.Diff([]int{0, 0, 1, 0, 2, 0, 0}, seq); diff != "" {
		t.Errorf("5,1,1 sequence (-nginx +got):\n%s", diff)
	}
	for _, w := range [][]int64{{5, 3, 2}, {1, 1}, {7, 2, 1, 5}, {333, 667}, {1, 0, 4}} {
		s := newSWRR(w)
		var total int64
		for _, x := range w {
			total += x
		}
		picks := make([]int, 5*total)
		for i := range picks {
			picks[i] = s.next(func(int) bool { return true })
		}
		for start := 0; start+int(total) <= len(picks); start++ {
			cnt := make([]int64, len(w))
			for _, p := range picks[start : start+int(total)] {
				cnt[p]++
			}
			for i := range w {
				if d := cnt[i] - w[i]; d < -1 || d > 1 || (start%int(total) == 0 && d != 0) {
					t.Fatalf("weights %v window at %d: counts %v", w, start, cnt)
				}
			}
		}
	}
}

// TestSharesOverHTTP sends sequential requests through a real dispatcher
// to three real backends and checks every aligned window of 10 requests
// splits 5/3/2 exactly, and that the path was rewritten to each variant.
func TestSharesOverHTTP(t *testing.T) {
	a, b, c := newFakeBackend(t, "resnet18"), newFakeBackend(t, "resnet50"), newFakeBackend(t, "resnet152")
	d, srv := newTestDispatcher(t, noHealth())
	if err := d.SetBackends("resnet", []Backend{
		{Variant: "resnet18", URL: a.srv.URL, Weight: 0.5},
		{Variant: "resnet50", URL: b.srv.URL, Weight: 0.3},
		{Variant: "resnet152", URL: c.srv.URL, Weight: 0.2},
	}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"resnet18": 5, "resnet50": 3, "resnet152": 2}
	client := srv.Client()
	for w := range 10 {
		got := map[string]int{}
		for range 10 {
			code, v := infer(t, client, srv.URL, "resnet")
			if code != 200 {
				t.Fatalf("status %d", code)
			}
			got[v]++
		}
		for v, n := range want {
			if d := got[v] - n; d < -1 || d > 1 {
				t.Errorf("window %d: %v, want %v ±1", w, got, want)
			}
		}
	}
	if a.paths[0] != "/v2/models/resnet18/infer" || c.paths[0] != "/v2/models/resnet152/infer" {
		t.Errorf("paths not rewritten: %q, %q", a.paths[0], c.paths[0])
	}
	// TF Serving REST goes through the same rewrite.
	resp, err := client.Post(srv.URL+"/v1/models/resnet:predict", "application/json", strings.NewReader(`{"instances":[[1,2]]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := resp.Header.Get(oip.VariantHeader); resp.StatusCode != 200 || want[v] == 0 {
		t.Errorf("predict: status %d, variant %q", resp.StatusCode, v)
	}
	var tfPath string
	for _, fb := range []*fakeBackend{a, b, c} {
		fb.mu.Lock()
		if n := len(fb.paths); n > 0 && strings.HasPrefix(fb.paths[n-1], "/v1/") {
			tfPath = fb.paths[n-1]
		}
		fb.mu.Unlock()
	}
	if tfPath != "/v1/models/"+resp.Header.Get(oip.VariantHeader)+":predict" {
		t.Errorf("TF path rewritten to %q", tfPath)
	}
}

// TestWeightChangeUnderLoad: concurrent clients keep sending while weights
// and backends change every few milliseconds, including removing and
// re-adding instances; not one request may fail, and after the last change
// traffic follows the final weights.
func TestWeightChangeUnderLoad(t *testing.T) {
	a, b, b2 := newFakeBackend(t, "v1"), newFakeBackend(t, "v2"), newFakeBackend(t, "v2")
	for _, fb := range []*fakeBackend{a, b, b2} {
		fb.delay.Store(int64(2 * time.Millisecond)) // keep requests in flight across changes
	}
	d, srv := newTestDispatcher(t, noHealth())
	set := func(i int) {
		// Alternate: move the v2 instance (create-before-delete) and flip shares.
		v2url := b.srv.URL
		if i%2 == 1 {
			v2url = b2.srv.URL
		}
		w := float64(i%5) / 4
		if err := d.SetBackends("m", []Backend{{Variant: "v1", URL: a.srv.URL, Weight: 1 - w + 0.01}, {Variant: "v2", URL: v2url, Weight: w + 0.01}}); err != nil {
			t.Error(err)
		}
	}
	set(0)
	stop := make(chan struct{})
	var changer sync.WaitGroup
	changer.Add(1)
	go func() {
		defer changer.Done()
		for i := 1; ; i++ {
			select {
			case <-stop:
				return
			case <-time.After(3 * time.Millisecond):
				set(i)
				if i%3 == 0 {
					if err := d.SetWeights("m", map[string]float64{"v1": 1, "v2": 1}); err != nil {
						t.Error(err)
					}
				}
			}
		}
	}()
	var failures, total atomic.Int64
	var wg sync.WaitGroup
	client := srv.Client()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				code, _ := infer(t, client, srv.URL, "m")
				total.Add(1)
				if code != 200 {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	changer.Wait()
	if failures.Load() != 0 {
		t.Fatalf("%d of %d requests failed during weight changes", failures.Load(), total.Load())
	}
	if got := a.hits.Load() + b.hits.Load() + b2.hits.Load(); got != total.Load() {
		t.Errorf("backends served %d requests, clients sent %d", got, total.Load())
	}
	// Final split 1:3 holds exactly over 8 sequential requests.
	if err := d.SetBackends("m", []Backend{{Variant: "v1", URL: a.srv.URL, Weight: 0.25}, {Variant: "v2", URL: b.srv.URL, Weight: 0.75}}); err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for range 8 {
		_, v := infer(t, client, srv.URL, "m")
		got[v]++
	}
	if diff := cmp.Diff(map[string]int{"v1": 2, "v2": 6}, got); diff != "" {
		t.Errorf("after change (-want +got):\n%s", diff)
	}
}

// TestSetRoutesDrains: SetRoutes returns only after the removed instance
// finished the request it was serving.
func TestSetRoutesDrains(t *testing.T) {
	old, next := newFakeBackend(t, "v"), newFakeBackend(t, "v")
	old.delay.Store(int64(200 * time.Millisecond))
	d, srv := newTestDispatcher(t, noHealth())
	m := d.Model("m")
	ctx := context.Background()
	if err := m.SetRoutes(ctx, []loop.Route{{Variant: "v", URL: old.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	done := make(chan int)
	go func() { code, _ := infer(t, srv.Client(), srv.URL, "m"); done <- code }()
	for d.model("m").tab.Load().backends[0].inFlight.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	t0 := time.Now()
	if err := m.SetRoutes(ctx, []loop.Route{{Variant: "v", URL: next.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	if old.hits.Load() != 1 {
		t.Errorf("SetRoutes returned after %v with the old instance's request unfinished", time.Since(t0))
	}
	if code := <-done; code != 200 {
		t.Errorf("in-flight request got %d", code)
	}
	if code, v := infer(t, srv.Client(), srv.URL, "m"); code != 200 || next.hits.Load() != 1 || v != "v" {
		t.Errorf("new route not used: %d %q", code, v)
	}
	// A drain bounded by a done context reports it.
	old.delay.Store(int64(time.Second))
	if err := m.SetRoutes(ctx, []loop.Route{{Variant: "v", URL: old.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	go infer(t, srv.Client(), srv.URL, "m")
	for d.model("m").tab.Load().backends[0].inFlight.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := m.SetRoutes(short, []loop.Route{{Variant: "v", URL: next.srv.URL, Weight: 1}}); err == nil {
		t.Error("SetRoutes with an expiring context returned nil while a request was in flight")
	}
}

// TestBackendKilled: one of two variants dies mid-run; its in-flight and
// later requests are retried on the other variant, clients see no error,
// and the dead backend is ejected so it soon gets no traffic.
func TestBackendKilled(t *testing.T) {
	a, b := newFakeBackend(t, "a"), newFakeBackend(t, "b")
	a.delay.Store(int64(5 * time.Millisecond))
	b.delay.Store(int64(time.Millisecond))
	cfg := noHealth()
	cfg.EjectAfter = 2
	cfg.EjectBase = time.Minute
	cfg.EjectMax = time.Minute
	reg := prometheus.NewRegistry()
	d, srv := newTestDispatcher(t, cfg, WithRegisterer(reg))
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: a.srv.URL, Weight: 1}, {Variant: "b", URL: b.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	var failures, total atomic.Int64
	var wg sync.WaitGroup
	client := srv.Client()
	killed := make(chan struct{})
	for w := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 60 {
				if w == 0 && i == 20 {
					// Kill a: stop accepting and cut every connection,
					// including the ones carrying requests.
					a.srv.Listener.Close()
					a.srv.CloseClientConnections()
					close(killed)
				}
				code, _ := infer(t, client, srv.URL, "m")
				total.Add(1)
				if code != 200 {
					failures.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	<-killed
	if failures.Load() != 0 {
		t.Fatalf("%d of %d requests failed after a backend died", failures.Load(), total.Load())
	}
	st, _ := d.Status("m")
	var aStatus Status
	for _, s := range st.Backends {
		if s.Variant == "a" {
			aStatus = s
		}
	}
	if !aStatus.Ejected {
		t.Errorf("dead backend not ejected: %+v", aStatus)
	}
	if n := testutil.ToFloat64(d.metrics.retries.WithLabelValues("m")); n < 1 {
		t.Errorf("retries_total = %v, want >= 1", n)
	}
	if n := testutil.ToFloat64(d.metrics.ejections.WithLabelValues("m", "a")); n != 1 {
		t.Errorf("ejections_total{a} = %v, want 1", n)
	}
	// Health checks also see it down and keep it out after ejection ends.
	d.CheckHealth(context.Background())
	d.CheckHealth(context.Background())
	st, _ = d.Status("m")
	for _, s := range st.Backends {
		if s.Variant == "a" && s.Healthy {
			t.Errorf("dead backend still healthy after 2 failed checks")
		}
	}
}

// TestHealthChecks: a backend whose /v2/health/ready fails twice gets no
// traffic; one passing check brings it back.
func TestHealthChecks(t *testing.T) {
	a, b := newFakeBackend(t, "a"), newFakeBackend(t, "b")
	d, srv := newTestDispatcher(t, noHealth())
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: a.srv.URL, Weight: 1}, {Variant: "b", URL: b.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	a.unready.Store(true)
	ctx := context.Background()
	d.CheckHealth(ctx)
	for range 4 {
		infer(t, srv.Client(), srv.URL, "m")
	}
	if a.hits.Load() != 2 {
		t.Errorf("after 1 failed check (threshold 2) a got %d of 4, want 2", a.hits.Load())
	}
	d.CheckHealth(ctx)
	for range 10 {
		infer(t, srv.Client(), srv.URL, "m")
	}
	if a.hits.Load() != 2 {
		t.Errorf("unhealthy backend got %d more requests", a.hits.Load()-2)
	}
	a.unready.Store(false)
	d.CheckHealth(ctx)
	for range 4 {
		infer(t, srv.Client(), srv.URL, "m")
	}
	if a.hits.Load() != 4 {
		t.Errorf("recovered backend got %d of 4, want 2", a.hits.Load()-2)
	}
}

func TestRejects(t *testing.T) {
	a := newFakeBackend(t, "a")
	cfg := noHealth()
	cfg.MaxBodyBytes = 1000
	d, srv := newTestDispatcher(t, cfg)
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: a.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	big := `{"inputs":[{"name":"x","shape":[1],"datatype":"FP32","data":[` + strings.Repeat("1,", 600) + `1]}]}`
	tests := []struct {
		name, method, path, body string
		chunked                  bool
		want                     int
	}{
		{"ok", "POST", "/v2/models/m/infer", inferBody, false, 200},
		{"malformed json", "POST", "/v2/models/m/infer", `{"inputs":[`, false, 400},
		{"not json", "POST", "/v1/models/m:predict", `hello`, false, 400},
		{"oversized", "POST", "/v2/models/m/infer", big, false, 413},
		{"oversized chunked", "POST", "/v2/models/m/infer", big, true, 413},
		{"unknown model", "POST", "/v2/models/nope/infer", inferBody, false, 404},
		{"unknown path", "GET", "/v3/whatever", "", false, 404},
		{"wrong method", "GET", "/v2/models/m/infer", "", false, 405},
		{"backend rejects", "POST", "/v2/models/m/infer", `{"inputs":[]}`, false, 400},
		{"live", "GET", "/v2/health/live", "", false, 200},
		{"ready", "GET", "/v2/health/ready", "", false, 200},
		{"model ready", "GET", "/v2/models/m/ready", "", false, 200},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			if tc.body != "" {
				body = strings.NewReader(tc.body)
				if tc.chunked {
					body = io.MultiReader(body) // hides the length: chunked encoding
				}
			}
			req, _ := http.NewRequest(tc.method, srv.URL+tc.path, body)
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.want, b)
			}
			if tc.want >= 400 {
				var e oip.ErrorResponse
				if json.Unmarshal(b, &e) != nil || e.Error == "" {
					t.Errorf("error body %q is not {\"error\": ...}", b)
				}
			}
		})
	}
	if a.hits.Load() != 1 {
		t.Errorf("backend saw %d valid inferences, want 1 (rejects must not reach it)", a.hits.Load())
	}
}

func TestAdminAPI(t *testing.T) {
	a, b := newFakeBackend(t, "a"), newFakeBackend(t, "b")
	cfg := noHealth()
	cfg.AdminToken = "s3cret"
	d, _ := newTestDispatcher(t, cfg)
	admin := httptest.NewServer(d.AdminHandler())
	t.Cleanup(admin.Close)
	do := func(method, path, token, body string) (int, string) {
		req, _ := http.NewRequest(method, admin.URL+path, strings.NewReader(body))
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := admin.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		out, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(out)
	}
	if code, _ := do("GET", "/admin/v1/models", "", ""); code != 401 {
		t.Errorf("no token: %d, want 401", code)
	}
	if code, _ := do("GET", "/admin/v1/models", "wrong", ""); code != 401 {
		t.Errorf("wrong token: %d, want 401", code)
	}
	backends := fmt.Sprintf(`[{"variant":"a","url":%q,"weight":1},{"variant":"b","url":%q,"weight":3}]`, a.srv.URL, b.srv.URL)
	if code, body := do("PUT", "/admin/v1/models/m/backends", "s3cret", backends); code != 200 {
		t.Fatalf("PUT backends: %d %s", code, body)
	}
	if code, body := do("PUT", "/admin/v1/models/m/weights", "s3cret", `{"a":1,"b":1}`); code != 200 {
		t.Fatalf("PUT weights: %d %s", code, body)
	}
	code, body := do("GET", "/admin/v1/models/m", "s3cret", "")
	var st ModelStatus
	if code != 200 || json.Unmarshal([]byte(body), &st) != nil {
		t.Fatalf("GET model: %d %s", code, body)
	}
	if len(st.Backends) != 2 || st.Backends[0].Share != 0.5 || st.Backends[1].Share != 0.5 {
		t.Errorf("shares after PUT weights: %+v", st.Backends)
	}
	for _, tc := range []struct{ method, path, body string }{
		{"PUT", "/admin/v1/models/m/weights", `{"zzz":1}`},
		{"PUT", "/admin/v1/models/m/weights", `{"a":-1}`},
		{"PUT", "/admin/v1/models/m/backends", `[{"variant":"a","url":"ftp://x"}]`},
		{"PUT", "/admin/v1/models/m/backends", `[{"variant":"a","url":"http://x","bogus":1}]`},
		{"PUT", "/admin/v1/models/m/backends", `[`},
	} {
		if code, body := do(tc.method, tc.path, "s3cret", tc.body); code != 400 {
			t.Errorf("%s %s %s: %d %s, want 400", tc.method, tc.path, tc.body, code, body)
		}
	}
	if code, _ := do("GET", "/admin/v1/models/nope", "s3cret", ""); code != 404 {
		t.Errorf("unknown model: %d, want 404", code)
	}
	if code, _ := do("DELETE", "/admin/v1/models/m", "s3cret", ""); code != 204 {
		t.Errorf("DELETE: %d", code)
	}
	if got := d.Models(); len(got) != 0 {
		t.Errorf("models after DELETE: %v", got)
	}
	// An empty token disables the admin API entirely.
	d2, _ := newTestDispatcher(t, noHealth())
	rec := httptest.NewRecorder()
	d2.AdminHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/admin/v1/models", nil))
	if rec.Code != 401 {
		t.Errorf("admin with no configured token: %d, want 401", rec.Code)
	}
}

// TestHistory counts arrivals per second on a fake clock.
func TestHistory(t *testing.T) {
	a := newFakeBackend(t, "a")
	start := time.Date(2026, 11, 27, 4, 0, 0, 0, time.UTC)
	fc := clocktesting.NewFakeClock(start.Add(300 * time.Millisecond))
	d, srv := newTestDispatcher(t, noHealth(), WithClock(fc))
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: a.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	// second 0: 3 requests; second 1: none; second 2: 2 requests.
	for range 3 {
		infer(t, srv.Client(), srv.URL, "m")
	}
	fc.SetTime(start.Add(2500 * time.Millisecond))
	for range 2 {
		infer(t, srv.Client(), srv.URL, "m")
	}
	// A rejected request is not an arrival.
	resp, _ := srv.Client().Post(srv.URL+"/v2/models/m/infer", "application/json", strings.NewReader("{"))
	resp.Body.Close()
	if got := d.History("m", start.Add(2500*time.Millisecond), 0); !cmp.Equal(got, []float64{3, 0}) {
		t.Errorf("History at 2.5s = %v, want [3 0] (second 2 incomplete)", got)
	}
	if got := d.History("m", start.Add(3*time.Second), 2); !cmp.Equal(got, []float64{0, 2}) {
		t.Errorf("History(max 2) at 3s = %v, want [0 2]", got)
	}
	if got := d.Model("m").VariantRPS(start.Add(3*time.Second), 3*time.Second); !cmp.Equal(got, map[string]float64{"a": 5.0 / 3}) {
		t.Errorf("VariantRPS = %v", got)
	}
	if got := d.History("nope", start, 0); got != nil {
		t.Errorf("unknown model history %v", got)
	}
}

// TestShedding: with one slow backend (100 ms, concurrency 1) and a 250 ms
// SLO, a burst of concurrent requests is partly refused with 503 +
// Retry-After instead of queueing past the SLO.
func TestShedding(t *testing.T) {
	a := newFakeBackend(t, "a")
	a.delay.Store(int64(100 * time.Millisecond))
	cfg := noHealth()
	cfg.SLO = 250 * time.Millisecond
	cfg.Shed = true
	d, srv := newTestDispatcher(t, cfg)
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: a.srv.URL, Weight: 1, Concurrency: 1}}); err != nil {
		t.Fatal(err)
	}
	// Warm the latency estimate.
	if code, _ := infer(t, srv.Client(), srv.URL, "m"); code != 200 {
		t.Fatal(code)
	}
	var shed, ok atomic.Int64
	var retryAfter atomic.Value
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := srv.Client().Post(srv.URL+"/v2/models/m/infer", "application/json", strings.NewReader(inferBody))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			switch resp.StatusCode {
			case 200:
				ok.Add(1)
			case 503:
				shed.Add(1)
				retryAfter.Store(resp.Header.Get("Retry-After"))
			}
		}()
	}
	wg.Wait()
	// 1 in service + 1 waiting 100 ms fit 100+100 ≤ 250; a third would
	// wait 200 ms → 300 ms > SLO. Arrival timing varies, so bound loosely.
	if shed.Load() == 0 || ok.Load() == 0 {
		t.Fatalf("ok=%d shed=%d; want some of each", ok.Load(), shed.Load())
	}
	if ra, _ := retryAfter.Load().(string); ra == "" {
		t.Error("503 without Retry-After")
	}
}

func TestTimeout(t *testing.T) {
	a := newFakeBackend(t, "a")
	a.delay.Store(int64(time.Second))
	cfg := noHealth()
	cfg.SLO = 20 * time.Millisecond // timeout 4 × 20 ms = 80 ms
	d, srv := newTestDispatcher(t, cfg)
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: a.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	code, _ := infer(t, srv.Client(), srv.URL, "m")
	if code != http.StatusGatewayTimeout {
		t.Errorf("status %d, want 504", code)
	}
	if el := time.Since(t0); el > 900*time.Millisecond {
		t.Errorf("timed-out request took %v", el)
	}
}

func TestNoBackendAndValidation(t *testing.T) {
	d, srv := newTestDispatcher(t, noHealth())
	if err := d.SetBackends("m", nil); err != nil {
		t.Fatal(err)
	}
	if code, _ := infer(t, srv.Client(), srv.URL, "m"); code != 503 {
		t.Errorf("model without backends: %d, want 503", code)
	}
	for _, bs := range [][]Backend{
		{{Variant: "", URL: "http://x"}},
		{{Variant: "a", URL: "x"}},
		{{Variant: "a", URL: "http://x/path"}},
		{{Variant: "a", URL: "http://x", Weight: -1}},
		{{Variant: "a", URL: "http://x"}, {Variant: "a", URL: "http://x"}},
	} {
		if err := d.SetBackends("m", bs); err == nil {
			t.Errorf("SetBackends(%+v) = nil, want error", bs)
		}
	}
	if err := d.SetBackends("a/b", nil); err == nil {
		t.Error("model name with '/' accepted")
	}
	if err := d.SetWeights("nope", nil); err == nil {
		t.Error("SetWeights on unknown model accepted")
	}
}

func TestConfigValidate(t *testing.T) {
	if err := Default().Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	bad := Config{SLO: -1, Shed: true, MaxBodyBytes: -1, HistorySeconds: -1, UnhealthyThreshold: 0}
	err := bad.Validate()
	for _, want := range []string{"slo must be", "shed needs", "maxBodyBytes", "historySeconds", "unhealthyThreshold", "ejectAfter"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to mention %q", err, want)
		}
	}
	if got := (Config{SLO: 500 * time.Millisecond, TimeoutSLOMultiple: 4}).Timeout(); got != 2*time.Second {
		t.Errorf("Timeout() = %v", got)
	}
}

// TestMetrics: requests_total and the latency histogram are labelled by
// model, variant and outcome; removing a variant deletes its series.
func TestMetrics(t *testing.T) {
	a, b := newFakeBackend(t, "a"), newFakeBackend(t, "b")
	reg := prometheus.NewRegistry()
	d, srv := newTestDispatcher(t, noHealth(), WithRegisterer(reg))
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: a.srv.URL, Weight: 1}, {Variant: "b", URL: b.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		infer(t, srv.Client(), srv.URL, "m")
	}
	if n := testutil.ToFloat64(d.metrics.requests.WithLabelValues("m", "a", OutcomeOK)); n != 2 {
		t.Errorf("requests_total{a,ok} = %v, want 2", n)
	}
	if err := d.SetBackends("m", []Backend{{Variant: "b", URL: b.srv.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	out, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	for _, mf := range out {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "variant" && l.GetValue() == "a" {
					fmt.Fprintf(&buf, "%s ", mf.GetName())
				}
			}
		}
	}
	if buf.Len() > 0 {
		t.Errorf("series of removed variant a remain: %s", buf.String())
	}
}

// TestBinaryTensorExtension sends OIP v2 binary-extension requests (a JSON
// header of Inference-Header-Content-Length bytes, then raw FP32 data)
// through the dispatcher with JSON validation on: valid ones reach the
// backend byte for byte with the header; a header that does not fit the
// body, a malformed JSON part or a malformed header value get 400.
func TestBinaryTensorExtension(t *testing.T) {
	var mu sync.Mutex
	var gotHeader string
	var gotBody []byte
	be := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == oip.ServerReadyPath {
			oip.WriteJSON(w, 200, oip.ReadyResponse{Ready: true})
			return
		}
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		gotHeader, gotBody = r.Header.Get("Inference-Header-Content-Length"), b
		mu.Unlock()
		oip.WriteJSON(w, 200, oip.InferResponse{ModelName: "m", Outputs: []oip.Tensor{oip.NewFP32("y", []int64{1, 1}, []float32{1})}})
	}))
	t.Cleanup(be.Close)
	d, srv := newTestDispatcher(t, noHealth())
	if err := d.SetBackends("m", []Backend{{Variant: "a", URL: be.URL, Weight: 1}}); err != nil {
		t.Fatal(err)
	}
	head := []byte(`{"inputs":[{"name":"x","shape":[1,784],"datatype":"FP32","parameters":{"binary_data_size":3136}}]}`)
	raw := make([]byte, 3136)
	for i := range raw {
		raw[i] = byte(i*7 + 3) // not JSON, and not valid UTF-8 in places
	}
	body := append(append([]byte{}, head...), raw...)
	send := func(hdr string, b []byte) (int, string) {
		req, _ := http.NewRequest("POST", srv.URL+oip.InferPath("m"), bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/octet-stream")
		if hdr != "" {
			req.Header.Set("Inference-Header-Content-Length", hdr)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		msg, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(msg)
	}
	if code, msg := send(fmt.Sprint(len(head)), body); code != 200 {
		t.Fatalf("valid binary request: status %d: %s", code, msg)
	}
	mu.Lock()
	if gotHeader != fmt.Sprint(len(head)) || !bytes.Equal(gotBody, body) {
		t.Errorf("backend got header %q and %d bytes (equal %v), want %d and the %d bytes sent", gotHeader, len(gotBody), bytes.Equal(gotBody, body), len(head), len(body))
	}
	mu.Unlock()
	for _, tc := range []struct {
		name, hdr string
		body      []byte
		want      string
	}{
		{"header past the body", fmt.Sprint(len(body) + 1), body, "more than the body"},
		{"JSON part malformed", fmt.Sprint(len(head) - 1), body, "not well-formed JSON"},
		{"no header", "", body, "not well-formed JSON"},
		{"header not a number", "12x", body, "Inference-Header-Content-Length"},
	} {
		if code, msg := send(tc.hdr, tc.body); code != 400 || !strings.Contains(msg, tc.want) {
			t.Errorf("%s: status %d %q, want 400 mentioning %q", tc.name, code, msg, tc.want)
		}
	}
}
