package modelserver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// envBenchRole makes the test binary a helper of hack/bench-modelserver.sh
// instead of running tests: "raw" measures raw ONNX Runtime throughput,
// "bodies" writes the request bodies the load generator sends; "serve"
// runs Main (a serve-model process); "paired" alternates short slices of
// raw and server throughput (benchpair_test.go), with "rawctl" as its raw
// loop.
const envBenchRole = "INFADAPTER_MODELSERVER_BENCH"

func TestMain(m *testing.M) {
	switch os.Getenv(envBenchRole) {
	case "":
		os.Exit(m.Run())
	case "raw":
		os.Exit(rawMain(os.Args[1:]))
	case "bodies":
		os.Exit(bodiesMain(os.Args[1:]))
	case "serve":
		os.Exit(Main(os.Args[1:]))
	case "rawctl":
		os.Exit(rawctlMain(os.Args[1:]))
	case "paired":
		os.Exit(pairedMain(os.Args[1:]))
	default:
		fmt.Fprintf(os.Stderr, "%s=%q: want raw, rawctl, paired, bodies or serve\n", envBenchRole, os.Getenv(envBenchRole))
		os.Exit(2)
	}
}

// rawMain runs `MODEL.onnx SECONDS INTRA_OP_THREADS`: Model.Infer at batch
// 1 in a loop on one worker (the server's configuration with --threads 1)
// for SECONDS after 20 warm-up runs, and prints
// "raw_rps <req/s> cpu <cores used>" — the script pins it to the server's CPU.
func rawMain(args []string) int {
	if len(args) != 3 {
		fmt.Fprintln(os.Stderr, "raw: want MODEL.onnx SECONDS INTRA_OP_THREADS")
		return 2
	}
	secs, err1 := strconv.ParseFloat(args[1], 64)
	threads, err2 := strconv.Atoi(args[2])
	if err1 != nil || err2 != nil {
		fmt.Fprintln(os.Stderr, "raw: bad SECONDS or INTRA_OP_THREADS")
		return 2
	}
	r, err := newRawLoop(args[0], threads)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer r.m.Close()
	cpu0 := cpuSeconds()
	n, el, err := r.run(time.Duration(secs * float64(time.Second)))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("raw_rps %.1f cpu %.3f\n", float64(n)/el.Seconds(), (cpuSeconds()-cpu0)/el.Seconds())
	return 0
}

// rawLoop is raw ONNX Runtime as the benchmarks measure it: the model
// loaded as the server loads it with --threads 1 (one worker, the given
// intra-op threads), Model.Infer at batch 1 on one image.
type rawLoop struct {
	m        *Model
	img, out []float32
}

// newRawLoop loads path and runs 20 warm-up inferences.
func newRawLoop(path string, threads int) (*rawLoop, error) {
	m, err := LoadModel(ModelConfig{Path: path, Workers: 1, IntraOpThreads: threads})
	if err != nil {
		return nil, err
	}
	if err := m.WarmUp(context.Background(), 20); err != nil {
		m.Close()
		return nil, err
	}
	return &rawLoop{m: m, img: image(1), out: make([]float32, 0, m.OutputSize())}, nil
}

// run infers in a loop for d and returns the inferences completed and
// the time they took.
func (r *rawLoop) run(d time.Duration) (int, time.Duration, error) {
	ctx := context.Background()
	t0 := time.Now()
	deadline := t0.Add(d)
	n := 0
	for time.Now().Before(deadline) {
		if _, err := r.m.Infer(ctx, r.img, r.out[:0]); err != nil {
			return n, time.Since(t0), err
		}
		n++
	}
	return n, time.Since(t0), nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
}

// bodiesMain runs `DIR`: writes DIR/v2.json (an OIP v2 JSON request of one
// 1×28×28 image, the same image rawMain infers) and DIR/v2.bin plus
// DIR/v2.bin.hlen (the same request in the binary tensor data extension,
// and its JSON header length for the Inference-Header-Content-Length header).
func bodiesMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "bodies: want DIR")
		return 2
	}
	img := image(1)
	bin, hlen := binaryBody([]int64{1, 1, 28, 28}, img, true)
	for name, b := range map[string][]byte{
		"v2.json":     []byte(v2Body([]int64{1, 1, 28, 28}, img)),
		"v2.bin":      bin,
		"v2.bin.hlen": []byte(strconv.Itoa(hlen)),
	} {
		if err := os.WriteFile(filepath.Join(args[0], name), b, 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return 0
}
