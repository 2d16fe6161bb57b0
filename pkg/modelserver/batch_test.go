package modelserver

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/infadapter/infadapter/pkg/oip"
)

// distinctImage is a 28×28 input different for every k (so its logits
// identify it).
func distinctImage(k int) []float32 {
	x := make([]float32, 784)
	for i := range x {
		x[i] = float32((i*(7+k)+13*k)%256) / 255
	}
	return x
}

func loadBatchModel(t testing.TB, name string, workers, maxRun int) *Model {
	t.Helper()
	needORT(t)
	m, err := LoadModel(ModelConfig{Path: filepath.Join(modelsDir(), name+".onnx"), Workers: workers, MaxRunBatch: maxRun})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(m.Close)
	return m
}

// sameLogits fails unless got and want agree to 1e-4 and name the same class.
func sameLogits(t *testing.T, what string, got, want []float32) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d logits, want %d", what, len(got), len(want))
	}
	for i := range want {
		if d := got[i] - want[i]; d > 1e-4 || d < -1e-4 {
			t.Fatalf("%s: logit %d = %g, batch-1 run %g", what, i, got[i], want[i])
		}
	}
	if oip.ArgMax(got) != oip.ArgMax(want) {
		t.Fatalf("%s: label %d, batch-1 run %d", what, oip.ArgMax(got), oip.ArgMax(want))
	}
}

func TestRunBatchMatchesBatch1(t *testing.T) {
	for _, name := range []string{"linear", "cnn-s"} {
		m := loadBatchModel(t, name, 1, 8)
		var in, want []float32
		for k := 0; k < 8; k++ {
			img := distinctImage(k)
			in = append(in, img...)
			w, err := m.Infer(context.Background(), img, nil)
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, w...)
		}
		for k := 2; k <= 8; k++ {
			got, err := m.RunBatch(context.Background(), in[:k*784], nil)
			if err != nil {
				t.Fatal(err)
			}
			for j := 0; j < k; j++ {
				sameLogits(t, fmt.Sprintf("%s batch %d example %d", name, k, j), got[j*10:(j+1)*10], want[j*10:(j+1)*10])
			}
		}
		if _, err := m.RunBatch(context.Background(), make([]float32, 9*784), nil); err == nil {
			t.Errorf("%s: batch 9 > MaxRunBatch 8 accepted", name)
		}
	}
}

func TestBatcherMapsAnswersBack(t *testing.T) {
	m := loadBatchModel(t, "cnn-s", 2, 4)
	var sizes [5]atomic.Int64 // runs by batch size
	b, err := NewBatcher(m, BatchConfig{MaxBatch: 4, Delay: 2 * time.Millisecond, Observe: func(n int) { sizes[n].Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// Requests of 1, 2 and 6 examples (6 > MaxBatch runs on its own), concurrently.
	const clients = 24
	want := make([][]float32, clients)
	ins := make([][]float32, clients)
	for c := range clients {
		n := []int{1, 1, 2, 1, 6, 1}[c%6]
		for j := range n {
			img := distinctImage(c*8 + j)
			ins[c] = append(ins[c], img...)
			w, err := m.Infer(context.Background(), img, nil)
			if err != nil {
				t.Fatal(err)
			}
			want[c] = append(want[c], w...)
		}
	}
	var wg sync.WaitGroup
	got := make([][]float32, clients)
	errs := make([]error, clients)
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			prefix := []float32{42} // Infer appends: what was in out stays
			got[c], errs[c] = b.Infer(context.Background(), ins[c], prefix)
		}()
	}
	wg.Wait()
	for c := range clients {
		if errs[c] != nil {
			t.Fatalf("client %d: %v", c, errs[c])
		}
		if got[c][0] != 42 {
			t.Fatalf("client %d: out's prefix overwritten", c)
		}
		sameLogits(t, fmt.Sprintf("client %d", c), got[c][1:], want[c])
	}
	multi := sizes[2].Load() + sizes[3].Load() + sizes[4].Load()
	if multi == 0 {
		t.Errorf("no batch of more than one example formed among %d concurrent requests with a 2 ms delay (runs by size: %d %d %d %d)",
			clients, sizes[1].Load(), sizes[2].Load(), sizes[3].Load(), sizes[4].Load())
	}
}

func TestBatcherCancelAndClose(t *testing.T) {
	m := loadBatchModel(t, "linear", 1, 4)
	if _, err := NewBatcher(m, BatchConfig{MaxBatch: 5}); err == nil || !strings.Contains(err.Error(), "2..4") {
		t.Errorf("max batch above the model's MaxRunBatch: %v", err)
	}
	if _, err := NewBatcher(m, BatchConfig{MaxBatch: 2, Delay: -1}); err == nil {
		t.Errorf("negative delay accepted")
	}
	b, err := NewBatcher(m, BatchConfig{MaxBatch: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Infer(ctx, distinctImage(1), nil); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled request: %v", err)
	}
	if _, err := b.Infer(context.Background(), make([]float32, 5), nil); err == nil {
		t.Errorf("partial example accepted")
	}
	b.Close()
	if _, err := b.Infer(context.Background(), distinctImage(1), nil); !errors.Is(err, ErrBatcherClosed) {
		t.Errorf("after Close: %v", err)
	}
}

// TestServerDynamicBatching drives the HTTP server with batching on from
// concurrent clients in JSON and binary form: every answer is its own
// image's, and the batch-size histogram shows batches formed.
func TestServerDynamicBatching(t *testing.T) {
	m := loadBatchModel(t, "cnn-s", 1, 8)
	s, err := NewServer(Config{Name: "cnn-s", Batch: BatchConfig{MaxBatch: 8, Delay: time.Millisecond}}, m)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	s.SetReady(true)
	hs := newHTTPServer(t, s)
	const clients = 16
	type answer struct {
		resp *http.Response
		body []byte
		err  error
	}
	answers := make([]answer, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			img := distinctImage(100 + c)
			var req *http.Request
			if c%2 == 0 {
				req, _ = http.NewRequest("POST", hs+"/v2/models/cnn-s/infer", strings.NewReader(v2Body([]int64{1, 1, 28, 28}, img)))
			} else {
				body, hl := binaryBody([]int64{1, 784}, img, true)
				req, _ = http.NewRequest("POST", hs+"/v2/models/cnn-s/infer", bytes.NewReader(body))
				req.Header.Set(HeaderBinaryLength, fmt.Sprint(hl))
			}
			a := &answers[c]
			if a.resp, a.err = http.DefaultClient.Do(req); a.err == nil {
				a.body, a.err = io.ReadAll(a.resp.Body)
				a.resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	for c, a := range answers {
		if a.err != nil || a.resp.StatusCode != 200 {
			t.Fatalf("client %d: %v %s", c, a.err, a.body)
		}
		want, err := m.Infer(context.Background(), distinctImage(100+c), nil)
		if err != nil {
			t.Fatal(err)
		}
		var got []float32
		if c%2 == 0 {
			r, err := oip.DecodeInferResponse(a.body)
			if err != nil {
				t.Fatalf("client %d: %v %s", c, err, a.body)
			}
			got, _ = r.Outputs[0].Float32s()
		} else {
			_, got = splitBinaryResponse(t, a.resp, a.body)
		}
		sameLogits(t, fmt.Sprintf("client %d", c), got, want)
	}
	_, metrics := do(t, "GET", hs+"/metrics", "")
	if !strings.Contains(metrics, "infadapter_modelserver_batch_size_count") || strings.Contains(metrics, fmt.Sprintf(`infadapter_modelserver_batch_size_count{model="cnn-s"} %d`, clients)) {
		t.Errorf("batch-size histogram absent, or every request ran alone:\n%s", grepLines(metrics, "batch_size"))
	}
	if err := (Config{Name: "x", Batch: BatchConfig{MaxBatch: -1, Delay: -1}}).Validate(); err == nil ||
		!strings.Contains(err.Error(), "dynamic batch = -1") || !strings.Contains(err.Error(), "delay") {
		t.Errorf("Validate: %v", err)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func newHTTPServer(t testing.TB, s *Server) string {
	t.Helper()
	return serveTest(t, s).URL
}

// TestServeProcessWithDynamicBatching runs a serve-model process (Main)
// with --dynamic-batch and checks concurrent answers and a clean SIGTERM.
func TestServeProcessWithDynamicBatching(t *testing.T) {
	needORT(t)
	cmd := exec.Command(os.Args[0], "serve-model", "--model", filepath.Join(modelsDir(), "cnn-s.onnx"), "--name", "cnn-s",
		"--port", "0", "--threads", "1", "--warmup", "2", "--dynamic-batch", "4", "--dynamic-batch-delay-us", "500")
	cmd.Env = append(os.Environ(), envBenchRole+"=serve")
	stdout, _ := cmd.StdoutPipe()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, ListeningPrefix) {
		t.Fatalf("first stdout line %q (%v); stderr: %s", line, err, stderr.String())
	}
	base := strings.TrimSpace(strings.TrimPrefix(line, ListeningPrefix))
	for i := 0; ; i++ {
		if resp, err := http.Get(base + "/v2/health/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if i == 200 {
			t.Fatalf("not ready after 10 s; stderr: %s", stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := loadModel(t, "cnn-s", 1)
	const clients = 8
	bodies := make([]string, clients)
	codes := make([]int, clients)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := http.Post(base+"/v2/models/cnn-s/infer", "application/json", strings.NewReader(v2Body([]int64{1, 784}, distinctImage(200+c))))
			if err != nil {
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			codes[c], bodies[c] = resp.StatusCode, string(b)
		}()
	}
	wg.Wait()
	for c := range clients {
		r, err := oip.DecodeInferResponse([]byte(bodies[c]))
		if codes[c] != 200 || err != nil {
			t.Fatalf("client %d: %d %v %s", c, codes[c], err, bodies[c])
		}
		got, _ := r.Outputs[0].Float32s()
		want, err := m.Infer(context.Background(), distinctImage(200+c), nil)
		if err != nil {
			t.Fatal(err)
		}
		sameLogits(t, fmt.Sprintf("client %d", c), got, want)
	}
	_, metrics := do(t, "GET", base+"/metrics", "")
	if !strings.Contains(metrics, "infadapter_modelserver_batch_size_count") {
		t.Errorf("no batch-size histogram: batching not on in the process")
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v; stderr: %s", err, stderr.String())
	}
}
