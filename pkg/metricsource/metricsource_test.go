package metricsource

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const qp = `# HELP kn_serving_invocation_duration_seconds The duration of task execution
# TYPE kn_serving_invocation_duration_seconds histogram
kn_serving_invocation_duration_seconds_bucket{http_response_status_code="200",le="0.05"} %d
kn_serving_invocation_duration_seconds_bucket{http_response_status_code="200",le="0.1"} %d
kn_serving_invocation_duration_seconds_bucket{http_response_status_code="200",le="1"} %d
kn_serving_invocation_duration_seconds_bucket{http_response_status_code="200",le="+Inf"} %d
kn_serving_invocation_duration_seconds_sum{http_response_status_code="200"} 1
kn_serving_invocation_duration_seconds_count{http_response_status_code="200"} %d
`

var qpMetrics = Metrics{Latency: "kn_serving_invocation_duration_seconds", LatencyUnit: time.Second}

func TestParseExposition(t *testing.T) {
	c, err := ParseExposition(strings.NewReader(fmt.Sprintf(qp, 10, 90, 100, 100, 100)), qpMetrics)
	if err != nil {
		t.Fatal(err)
	}
	if c.Requests != 100 || c.Buckets[0.1] != 90 || c.Buckets[math.Inf(1)] != 100 {
		t.Fatalf("got %+v", c)
	}
	old := `# TYPE revision_app_request_count counter
revision_app_request_count{response_code="200"} 40
revision_app_request_count{response_code="500"} 2
`
	c, err = ParseExposition(strings.NewReader(old), Metrics{RequestCount: "revision_app_request_count", Latency: "revision_app_request_latencies"})
	if err != nil || c.Requests != 42 || c.Buckets != nil {
		t.Fatalf("old names: %+v %v", c, err)
	}
	if _, err := ParseExposition(strings.NewReader("other 1\n"), qpMetrics); err == nil || !strings.Contains(err.Error(), "kn_serving_invocation_duration_seconds") {
		t.Fatalf("missing metric: want an error naming it, got %v", err)
	}
	if _, err := ParseExposition(strings.NewReader("garbage{{{\n"), qpMetrics); err == nil {
		t.Fatal("garbage: want an error")
	}
}

func TestQuantile(t *testing.T) {
	b := map[float64]float64{0.05: 10, 0.1: 90, 1: 100, math.Inf(1): 100}
	// rank 99 lies in (0.1, 1]: 0.1 + 0.9·(99-90)/(100-90) = 0.91.
	if got := Quantile(0.99, b); math.Abs(got-0.91) > 1e-9 {
		t.Fatalf("p99 = %v, want 0.91", got)
	}
	// rank 5 lies in (0, 0.05]: 0.025.
	if got := Quantile(0.05, b); math.Abs(got-0.025) > 1e-9 {
		t.Fatalf("p5 = %v", got)
	}
	if got := Quantile(0.99, map[float64]float64{1: 0, math.Inf(1): 5}); got != 1 {
		t.Fatalf("+Inf bucket: %v, want the largest finite bound 1", got)
	}
	if got := Quantile(0.99, nil); got != 0 {
		t.Fatalf("empty: %v", got)
	}
}

// TestPodScraper scrapes two real HTTP servers on loopback addresses.
func TestPodScraper(t *testing.T) {
	type srv struct {
		mu sync.Mutex
		n  [5]int
	}
	var servers []*srv
	var ips []string
	for i := 0; i < 2; i++ {
		s := &srv{}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		hs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			s.mu.Lock()
			defer s.mu.Unlock()
			fmt.Fprintf(w, qp, s.n[0], s.n[1], s.n[2], s.n[3], s.n[4])
		}))
		hs.Listener.Close()
		hs.Listener = l
		hs.Start()
		defer hs.Close()
		servers = append(servers, s)
		ips = append(ips, l.Addr().String())
	}
	// Simpler: scrape each server as its own "revision" with its own port.
	now := time.Unix(1000, 0)
	set := func(i, fast, mid, slow int) {
		servers[i].mu.Lock()
		servers[i].n = [5]int{fast, fast + mid, fast + mid + slow, fast + mid + slow, fast + mid + slow}
		servers[i].mu.Unlock()
	}
	scr := map[int]*PodScraper{}
	for i, a := range ips {
		_, port, _ := net.SplitHostPort(a)
		var p int
		fmt.Sscan(port, &p)
		scr[i] = &PodScraper{Port: p, Path: "/metrics", Metrics: qpMetrics}
	}
	target := func(i int) []Target {
		return []Target{{Namespace: "ns", Revision: "rev", Pods: []Pod{{Name: fmt.Sprint("pod", i), IP: "127.0.0.1"}}}}
	}
	set(0, 100, 0, 0)
	r, err := scr[0].Read(context.Background(), now, target(0))
	if err != nil || r["rev"].OK {
		t.Fatalf("first read must have no rate: %+v %v", r, err)
	}
	// 10 s later: 200 more requests, 150 fast, 48 mid, 2 slow.
	set(0, 250, 48, 2)
	r, err = scr[0].Read(context.Background(), now.Add(10*time.Second), target(0))
	if err != nil {
		t.Fatal(err)
	}
	got := r["rev"]
	if !got.OK || got.RPS != 20 || got.Requests != 200 || got.Window != 10*time.Second {
		t.Fatalf("reading %+v, want 20 rps over 10 s", got)
	}
	// p99: rank 198 of 200; buckets 150 ≤ 0.05, 198 ≤ 0.1 → exactly 0.1 s.
	if got.P99 != 100*time.Millisecond {
		t.Fatalf("p99 %v, want 100ms", got.P99)
	}
	// Counter reset (restart) counts from zero instead of going negative.
	set(0, 30, 0, 0)
	r, _ = scr[0].Read(context.Background(), now.Add(20*time.Second), target(0))
	if r["rev"].RPS != 3 {
		t.Fatalf("after reset %+v, want 3 rps", r["rev"])
	}
	// A dead pod is an error naming it, the others still read.
	bad := &PodScraper{Port: 1, Path: "/metrics", Metrics: qpMetrics, Client: &http.Client{Timeout: time.Second}}
	_, err = bad.Read(context.Background(), now, []Target{{Namespace: "ns", Revision: "gone", Pods: []Pod{{Name: "dead", IP: "127.0.0.1"}}}})
	if err == nil || !strings.Contains(err.Error(), "ns/dead") {
		t.Fatalf("want an error naming the pod, got %v", err)
	}
}

func TestPrometheus(t *testing.T) {
	var queries []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query().Get("query")
		queries = append(queries, q)
		v := "12.5"
		if strings.HasPrefix(q, "histogram_quantile") {
			v = "0.25"
		}
		fmt.Fprintf(w, `{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1,"%s"]}]}}`, v)
	}))
	defer srv.Close()
	p := &Prometheus{BaseURL: srv.URL, Metrics: qpMetrics, Window: 30 * time.Second, NamespaceLabel: "namespace_name", RevisionLabel: "revision_name"}
	r, err := p.Read(context.Background(), time.Unix(100, 0), []Target{{Namespace: "ns", Revision: "r1"}})
	if err != nil {
		t.Fatal(err)
	}
	if got := r["r1"]; !got.OK || got.RPS != 12.5 || got.P99 != 250*time.Millisecond {
		t.Fatalf("reading %+v", got)
	}
	want := `sum(rate(kn_serving_invocation_duration_seconds_count{namespace_name="ns",revision_name="r1"}[30s]))`
	if queries[0] != want {
		t.Fatalf("query %q, want %q", queries[0], want)
	}
	bad := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(400)
		fmt.Fprint(w, `{"status":"error","error":"parse error"}`)
	}))
	defer bad.Close()
	p.BaseURL = bad.URL
	if _, err := p.Read(context.Background(), time.Unix(100, 0), []Target{{Namespace: "ns", Revision: "r1"}}); err == nil || !strings.Contains(err.Error(), "parse error") {
		t.Fatalf("want the API error, got %v", err)
	}
}
