package loadgen

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

// BenchmarkOpenLoop measures the generator's cost per request against a
// trivial loopback server: b.N requests at an offered rate of 2,000/s.
func BenchmarkOpenLoop(b *testing.B) {
	resp := []byte(`{"model_name":"m","outputs":[{"name":"y","shape":[1,10],"datatype":"FP32","data":[0,0,0,1,0,0,0,0,0,0]}]}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = w.Write(resp)
	}))
	defer srv.Close()
	src, _ := Zeros(ProtocolV2, []int64{1, 28, 28})
	cfg := testConfig(srv.URL)
	cfg.MaxRequests = b.N
	r, err := NewRunner(cfg, src)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	secs := b.N/2000 + 1
	sched, _ := Constant(2000, secs)
	b.ResetTimer()
	rep, _, err := r.Run(context.Background(), sched)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(rep.Latency.P99, "p99-ms")
	b.ReportMetric(float64(rep.OK)/float64(rep.Offered), "ok-frac")
}
