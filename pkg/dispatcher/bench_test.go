package dispatcher

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/infadapter/infadapter/pkg/oip"
)

// BenchmarkProxy measures one proxied OIP v2 request end to end over
// loopback (client → dispatcher → trivial backend), with parallel clients,
// through the dispatcher's Server (-std-server: net/http's).
// Compare with BenchmarkDirect (client → backend) for the added cost; the
// nginx comparison is hack/bench-dispatcher.sh.
func BenchmarkProxy(b *testing.B) {
	be := trivialBackend(b)
	d, err := New(Config{HealthInterval: 0, ValidateJSON: true})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	if err := d.SetBackends("m", []Backend{{Variant: "m", URL: be.URL, Weight: 1}}); err != nil {
		b.Fatal(err)
	}
	if *stdServer {
		front := httptest.NewServer(d)
		defer front.Close()
		runClients(b, front.URL+oip.InferPath("m"))
		return
	}
	front := startServer(b, d)
	runClients(b, front.URL+oip.InferPath("m"))
}

// BenchmarkDirect is the same load straight to the backend.
func BenchmarkDirect(b *testing.B) {
	be := trivialBackend(b)
	runClients(b, be.URL+oip.InferPath("m"))
}

func trivialBackend(b *testing.B) *httptest.Server {
	resp := []byte(`{"model_name":"m","outputs":[{"name":"y","shape":[1,10],"datatype":"FP32","data":[0,0,0,1,0,0,0,0,0,0]}]}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(resp)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func runClients(b *testing.B, url string) {
	body, _ := oip.NewFP32("input", []int64{1, 1, 28, 28}, make([]float32, 784)).Data.MarshalJSON()
	req := []byte(`{"inputs":[{"name":"input","shape":[1,1,28,28],"datatype":"FP32","data":` + string(body) + `}]}`)
	tr := &http.Transport{MaxIdleConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	b.SetBytes(int64(len(req)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := c.Post(url, "application/json", bytes.NewReader(req))
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
}

// BenchmarkProxyStdTransport is BenchmarkProxy with requests sent through
// net/http's Transport instead of h1.Pool (the A/B for package h1).
func BenchmarkProxyStdTransport(b *testing.B) {
	useStdTransport = true
	defer func() { useStdTransport = false }()
	BenchmarkProxy(b)
}
