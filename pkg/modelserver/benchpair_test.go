package modelserver

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gonum.org/v1/gonum/stat/distuv"
)

// The "paired" role of the test binary (hack/bench-modelserver.sh with
// PAIRED=1) measures server / raw ONNX Runtime throughput in short
// alternating slices instead of one 3-s run of each per round. On this
// shared VM the raw throughput alone drifts by ±15 % between runs a few
// seconds apart, so a ratio of two runs 4–20 s apart is mostly drift.
// Here every server slice is sandwiched between two raw slices of the
// same length (raw, server A, raw, server B, raw, …) and compared with
// their mean, which cancels drift slower than a slice; the median of
// many such ratios, with a distribution-free confidence interval, is
// what is reported.
//
// Processes: the raw loop is a child (role "rawctl") pinned to the
// servers' CPU that runs Model.Infer for as long as it is told; the
// servers (real serve-model processes started by the script, idle but
// for their slices) are pinned there too; this driver, the load
// generator, runs on the client CPU with CONNS keep-alive connections
// per server, closed loop, and counts the answers completed within the
// slice (then waits for the ones in flight, so slices never overlap).

// rawctlMain runs `MODEL.onnx INTRA_OP_THREADS`: loads the model as
// rawMain does, prints "ready", then for every line "MS" on stdin runs
// Model.Infer in a loop for MS milliseconds and prints "N SECONDS" (the
// inferences completed and the time they took).
func rawctlMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "rawctl: want MODEL.onnx INTRA_OP_THREADS")
		return 2
	}
	threads, err := strconv.Atoi(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "rawctl: bad INTRA_OP_THREADS")
		return 2
	}
	r, err := newRawLoop(args[0], threads)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer r.m.Close()
	fmt.Println("ready")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		ms, err := strconv.Atoi(strings.TrimSpace(sc.Text()))
		if err != nil || ms <= 0 {
			fmt.Fprintf(os.Stderr, "rawctl: bad command %q\n", sc.Text())
			return 2
		}
		n, el, err := r.run(time.Duration(ms) * time.Millisecond)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		fmt.Printf("%d %.6f\n", n, el.Seconds())
	}
	return 0
}

// pairTarget is one server under test.
type pairTarget struct {
	name  string
	conns []*pairConn
	// per-slice throughput (req/s) and the ratio to the surrounding raw slices
	rps, ratio []float64
}

// pairConn is one keep-alive connection sending the same request again
// and again.
type pairConn struct {
	c   net.Conn
	br  *bufio.Reader
	req []byte
}

// roundTrip sends the request and reads one answer (status 200 and a
// Content-Length body, or an error).
func (pc *pairConn) roundTrip() error {
	if _, err := pc.c.Write(pc.req); err != nil {
		return err
	}
	status, err := pc.br.ReadSlice('\n')
	if err != nil {
		return err
	}
	if !bytes.HasPrefix(status, []byte("HTTP/1.1 200 ")) {
		return fmt.Errorf("answer %q", bytes.TrimSpace(status))
	}
	length := -1
	for {
		line, err := pc.br.ReadSlice('\n')
		if err != nil {
			return err
		}
		if len(line) <= 2 {
			break
		}
		if k, v, ok := bytes.Cut(line, []byte(":")); ok && strings.EqualFold(string(k), "Content-Length") {
			length, err = strconv.Atoi(string(bytes.TrimSpace(v)))
			if err != nil {
				return fmt.Errorf("Content-Length %q", v)
			}
		}
	}
	if length < 0 {
		return fmt.Errorf("answer without Content-Length")
	}
	_, err = pc.br.Discard(length)
	return err
}

// slice drives all connections of t, closed loop, for d and returns the
// answers completed within d per second (answers in flight at the end are
// waited for and not counted).
func (t *pairTarget) slice(d time.Duration) (float64, error) {
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, len(t.conns))
	t0 := time.Now()
	deadline := t0.Add(d)
	for _, pc := range t.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for time.Now().Before(deadline) {
				if err := pc.roundTrip(); err != nil {
					errs <- fmt.Errorf("%s: %w", t.name, err)
					return
				}
				if time.Now().Before(deadline) {
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return float64(done.Load()) / d.Seconds(), nil
}

// pairedMain runs `MODEL.onnx INTRA SERVER_CPU SLICE_MS CYCLES CONNS`
// followed by groups `NAME URL BODY_FILE HLEN` (HLEN: the binary
// extension's JSON header length, 0 for a JSON body), one group per
// running server of that model; it prints a markdown table row per
// server (and progress on stderr).
func pairedMain(args []string) int {
	if len(args) < 10 || (len(args)-6)%4 != 0 {
		fmt.Fprintln(os.Stderr, "paired: want MODEL.onnx INTRA SERVER_CPU SLICE_MS CYCLES CONNS {NAME URL BODY_FILE HLEN}...")
		return 2
	}
	model, intra, cpu := args[0], args[1], args[2]
	sliceMS, err1 := strconv.Atoi(args[3])
	cycles, err2 := strconv.Atoi(args[4])
	conns, err3 := strconv.Atoi(args[5])
	if err1 != nil || err2 != nil || err3 != nil || sliceMS <= 0 || cycles <= 0 || conns <= 0 {
		fmt.Fprintln(os.Stderr, "paired: SLICE_MS, CYCLES and CONNS must be positive integers")
		return 2
	}
	var targets []*pairTarget
	for g := args[6:]; len(g) > 0; g = g[4:] {
		t, err := newPairTarget(g[0], g[1], g[2], g[3], conns)
		if err != nil {
			fmt.Fprintln(os.Stderr, "paired:", err)
			return 1
		}
		targets = append(targets, t)
	}

	self, err := os.Executable()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	raw := exec.Command("taskset", "-c", cpu, self, model, intra)
	raw.Env = append(os.Environ(), envBenchRole+"=rawctl")
	raw.Stderr = os.Stderr
	toRaw, _ := raw.StdinPipe()
	fromRaw, _ := raw.StdoutPipe()
	if err := raw.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "paired: raw loop:", err)
		return 1
	}
	defer func() { toRaw.Close(); _ = raw.Wait() }()
	rawOut := bufio.NewScanner(fromRaw)
	if !rawOut.Scan() || rawOut.Text() != "ready" {
		fmt.Fprintln(os.Stderr, "paired: raw loop did not start")
		return 1
	}
	d := time.Duration(sliceMS) * time.Millisecond
	rawSlice := func() (float64, error) {
		fmt.Fprintln(toRaw, sliceMS)
		if !rawOut.Scan() {
			return 0, fmt.Errorf("raw loop ended: %v", rawOut.Err())
		}
		var n int
		var secs float64
		if _, err := fmt.Sscanf(rawOut.Text(), "%d %f", &n, &secs); err != nil || secs <= 0 {
			return 0, fmt.Errorf("raw loop said %q", rawOut.Text())
		}
		return float64(n) / secs, nil
	}

	// One slice of each server to warm the connections up, uncounted.
	for _, t := range targets {
		if _, err := t.slice(d); err != nil {
			fmt.Fprintln(os.Stderr, "paired:", err)
			return 1
		}
	}
	var raws []float64
	before, err := rawSlice()
	if err != nil {
		fmt.Fprintln(os.Stderr, "paired:", err)
		return 1
	}
	for c := range cycles {
		// Rotate the order so that no server always follows the same one.
		for i := range targets {
			t := targets[(i+c)%len(targets)]
			rps, err := t.slice(d)
			if err != nil {
				fmt.Fprintln(os.Stderr, "paired:", err)
				return 1
			}
			after, err := rawSlice()
			if err != nil {
				fmt.Fprintln(os.Stderr, "paired:", err)
				return 1
			}
			t.rps = append(t.rps, rps)
			t.ratio = append(t.ratio, rps/((before+after)/2))
			raws = append(raws, before)
			before = after
		}
		fmt.Fprintf(os.Stderr, "cycle %d/%d: raw %.0f req/s", c+1, cycles, before)
		for _, t := range targets {
			fmt.Fprintf(os.Stderr, ", %s %.2f", t.name, t.ratio[len(t.ratio)-1])
		}
		fmt.Fprintln(os.Stderr)
	}
	name := strings.TrimSuffix(model[strings.LastIndex(model, "/")+1:], ".onnx")
	if f := os.Getenv("PAIRS_FILE"); f != "" {
		if err := appendPairs(f, name, targets); err != nil {
			fmt.Fprintln(os.Stderr, "paired:", err)
			return 1
		}
	}
	fmt.Printf("| %s | raw | %.0f | – | – | – | – | – |\n", name, median(raws))
	for _, t := range targets {
		lo, hi := medianCI(t.ratio)
		fmt.Printf("| %s | %s | %.0f | %d | **%.3f** | %.3f–%.3f | %.3f–%.3f | %d/%d |\n", name, t.name, median(t.rps),
			len(t.ratio), median(t.ratio), lo, hi, quantile(t.ratio, 0.25), quantile(t.ratio, 0.75),
			countAtLeast(t.ratio, 0.9), len(t.ratio))
	}
	return 0
}

// appendPairs appends "MODEL KIND SERVER_RPS RATIO" lines, one per pair,
// to file (PAIRS_FILE), so that runs can be pooled afterwards.
func appendPairs(file, model string, targets []*pairTarget) error {
	f, err := os.OpenFile(file, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	for _, t := range targets {
		for i, r := range t.ratio {
			fmt.Fprintf(w, "%s %s %.1f %.4f\n", model, t.name, t.rps[i], r)
		}
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func newPairTarget(name, rawURL, bodyFile, hlen string, conns int) (*pairTarget, error) {
	u, err := url.Parse(rawURL)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%s: bad URL %q", name, rawURL)
	}
	body, err := os.ReadFile(bodyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	var req bytes.Buffer
	fmt.Fprintf(&req, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", u.Path, u.Host, len(body))
	if hlen != "0" {
		fmt.Fprintf(&req, "Content-Type: application/octet-stream\r\n%s: %s\r\n", HeaderBinaryLength, hlen)
	} else {
		req.WriteString("Content-Type: application/json\r\n")
	}
	req.WriteString("\r\n")
	req.Write(body)
	t := &pairTarget{name: name}
	for range conns {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		t.conns = append(t.conns, &pairConn{c: c, br: bufio.NewReaderSize(c, 64<<10), req: req.Bytes()})
	}
	return t, nil
}

func median(x []float64) float64 { return quantile(x, 0.5) }

// quantile is the q-quantile of x by linear interpolation between order
// statistics.
func quantile(x []float64, q float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := slices.Sorted(slices.Values(x))
	p := q * float64(len(s)-1)
	i := int(p)
	if i+1 >= len(s) {
		return s[len(s)-1]
	}
	return s[i] + (p-float64(i))*(s[i+1]-s[i])
}

// medianCI is a distribution-free 95 % confidence interval of the median:
// the order statistics x(k) and x(n+1−k) with k the largest such that
// P(Binomial(n, ½) < k) ≤ 2.5 %.
func medianCI(x []float64) (lo, hi float64) {
	s := slices.Sorted(slices.Values(x))
	n := len(s)
	if n == 0 {
		return 0, 0
	}
	b := distuv.Binomial{N: float64(n), P: 0.5}
	k := 0
	for k+1 <= n/2 && b.CDF(float64(k)) <= 0.025 { // CDF(k) = P(X ≤ k) = P(X < k+1)
		k++
	}
	if k == 0 {
		return s[0], s[n-1]
	}
	return s[k-1], s[n-k]
}

func countAtLeast(x []float64, v float64) int {
	n := 0
	for _, y := range x {
		if y >= v {
			n++
		}
	}
	return n
}

// TestMedianCI checks the pure statistics of the paired benchmark against
// the published order-statistic table (n = 20: x(6)–x(15); n = 9:
// x(2)–x(8)).
func TestMedianCI(t *testing.T) {
	for _, tc := range []struct{ n, lo, hi int }{{20, 6, 15}, {9, 2, 8}, {5, 1, 5}} {
		x := make([]float64, tc.n)
		for i := range x {
			x[i] = float64(tc.n - i) // x(k) = k, given in reverse
		}
		if lo, hi := medianCI(x); lo != float64(tc.lo) || hi != float64(tc.hi) {
			t.Errorf("n=%d: CI x(%v)–x(%v), want x(%d)–x(%d)", tc.n, lo, hi, tc.lo, tc.hi)
		}
	}
	x := []float64{4, 1, 3, 2}
	if q := quantile(x, 0.5); q != 2.5 {
		t.Errorf("median of 1..4 = %v, want 2.5", q)
	}
	if q := quantile(x, 0.25); q != 1.75 {
		t.Errorf("quartile of 1..4 = %v, want 1.75", q)
	}
}
