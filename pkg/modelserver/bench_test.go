package modelserver

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// BenchmarkThroughput compares, per committed model at one worker with one
// ORT thread, the raw ONNX Runtime throughput (Infer in a loop) with the
// model server's (OIP v2 over HTTP from 4 concurrent keep-alive clients,
// JSON decoding included), all in this one process: a quick in-process
// check. The figures in docs/benchmarks.md come from
// hack/bench-modelserver.sh instead, which gives the server its own CPU and
// runs the load generator (wrk) and raw ORT in other processes.
func BenchmarkThroughput(b *testing.B) {
	needORT(b)
	files, _ := filepath.Glob(filepath.Join(modelsDir(), "*.onnx"))
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".onnx")
		m, err := LoadModel(ModelConfig{Path: f, Workers: 1})
		if err != nil {
			b.Fatal(err)
		}
		img := image(1)
		b.Run(name+"/raw", func(b *testing.B) {
			out := make([]float32, 0, 16)
			for i := 0; i < b.N; i++ {
				if _, err := m.Infer(context.Background(), img, out[:0]); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
		b.Run(name+"/http", func(b *testing.B) {
			s, err := NewServer(Config{Name: name}, m)
			if err != nil {
				b.Fatal(err)
			}
			s.SetReady(true)
			hs := httptest.NewServer(s)
			defer hs.Close()
			body := []byte(v2Body([]int64{1, 1, 28, 28}, img))
			url := hs.URL + "/v2/models/" + name + "/infer"
			cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
			b.SetParallelism(2) // 2×GOMAXPROCS clients keep the one worker busy
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := cl.Post(url, "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					_, _ = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
		m.Close()
	}
}
