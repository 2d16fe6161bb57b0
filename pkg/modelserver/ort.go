package modelserver

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	ort "github.com/yalue/onnxruntime_go"
)

// ORTVersion is the ONNX Runtime release hack/install-onnxruntime.sh installs.
const ORTVersion = "1.30.0"

// EnvORTLib names the environment variable that overrides the library path.
const EnvORTLib = "INFADAPTER_ORT_LIB"

// ErrNoRuntime is wrapped by LocateLibrary's error when the library is absent.
var ErrNoRuntime = errors.New("ONNX Runtime library not found")

// CacheDir is where hack/install-onnxruntime.sh puts the library:
// ${XDG_CACHE_HOME:-$HOME/.cache}/infadapter/onnxruntime/<ORTVersion>.
func CacheDir() string {
	base := os.Getenv("XDG_CACHE_HOME")
	if base == "" {
		home, err := os.UserHomeDir()
		if err != nil {
			home = "."
		}
		base = filepath.Join(home, ".cache")
	}
	return filepath.Join(base, "infadapter", "onnxruntime", ORTVersion)
}

// LocateLibrary returns the path of libonnxruntime.so.1: $INFADAPTER_ORT_LIB
// when set (it must exist), else the cache directory. The error says how to
// install it.
func LocateLibrary() (string, error) {
	if p := os.Getenv(EnvORTLib); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %s=%q: %v", ErrNoRuntime, EnvORTLib, p, err)
		}
		return p, nil
	}
	p := filepath.Join(CacheDir(), "libonnxruntime.so.1")
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("%w at %s: run `make onnxruntime` (or hack/install-onnxruntime.sh) "+
			"to download it from the npm package onnxruntime-node@%s, or set %s to a libonnxruntime.so path",
			ErrNoRuntime, p, ORTVersion, EnvORTLib)
	}
	return p, nil
}

var (
	initOnce sync.Once
	initErr  error
)

// InitRuntime locates and loads the ONNX Runtime library once per process.
func InitRuntime() error {
	initOnce.Do(func() {
		var p string
		p, initErr = LocateLibrary()
		if initErr != nil {
			return
		}
		ort.SetSharedLibraryPath(p)
		if err := ort.InitializeEnvironment(); err != nil {
			initErr = fmt.Errorf("initialising ONNX Runtime from %s: %w", p, err)
		}
	})
	return initErr
}

// ModelConfig configures a Model.
type ModelConfig struct {
	// Path of the .onnx file.
	Path string
	// Workers is the number of concurrent inferences (one session each); ≥ 1.
	Workers int
	// IntraOpThreads per session; 0 means 1 (see the package comment).
	IntraOpThreads int
	// MaxRunBatch is the most examples one ONNX Runtime run may take
	// (RunBatch); 0 or 1 means batch-1 runs only. Above 1 the model needs a
	// dynamic batch dimension, and each worker gets a second session whose
	// input and output tensors for every batch size 2..MaxRunBatch share one
	// buffer.
	MaxRunBatch int
}

// Model is a loaded ONNX model with one float32 input and one float32
// output, served at batch 1 by a bounded pool of workers. Safe for
// concurrent use.
type Model struct {
	inName, outName string
	// inShape/outShape are the model's declared shapes (-1 = dynamic).
	inShape, outShape []int64
	// inSize/outSize are the element counts of one example (batch dim = 1).
	inSize, outSize int
	pool            chan *worker
	workers         []*worker
	maxRunBatch     int
	closeOnce       sync.Once
	closed          atomic.Bool
}

type worker struct {
	sess *ort.AdvancedSession
	in   *ort.Tensor[float32]
	out  *ort.Tensor[float32]
	// Batched runs (MaxRunBatch > 1): bIn[k]/bOut[k] are batch-k tensors
	// over the shared buffers bInData/bOutData.
	dyn               *ort.DynamicAdvancedSession
	bIn, bOut         []*ort.Tensor[float32]
	bInData, bOutData []float32
}

// LoadModel opens the model with cfg.Workers sessions.
func LoadModel(cfg ModelConfig) (*Model, error) {
	if cfg.Workers < 1 {
		return nil, fmt.Errorf("model %s: workers = %d, want ≥ 1", cfg.Path, cfg.Workers)
	}
	if cfg.IntraOpThreads == 0 {
		cfg.IntraOpThreads = 1
	}
	if err := InitRuntime(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(cfg.Path); err != nil {
		return nil, fmt.Errorf("model file: %w", err)
	}
	ins, outs, err := ort.GetInputOutputInfo(cfg.Path)
	if err != nil {
		return nil, fmt.Errorf("reading model %s: %w", cfg.Path, err)
	}
	if len(ins) != 1 || len(outs) != 1 {
		return nil, fmt.Errorf("model %s: has %d inputs and %d outputs; only single-input, single-output models are supported", cfg.Path, len(ins), len(outs))
	}
	if ins[0].DataType != ort.TensorElementDataTypeFloat || outs[0].DataType != ort.TensorElementDataTypeFloat {
		return nil, fmt.Errorf("model %s: input %s / output %s are not float32 tensors", cfg.Path, ins[0], outs[0])
	}
	m := &Model{
		inName: ins[0].Name, outName: outs[0].Name,
		inShape: append([]int64(nil), ins[0].Dimensions...), outShape: append([]int64(nil), outs[0].Dimensions...),
		pool: make(chan *worker, cfg.Workers),
	}
	inB, inN, err := batch1(m.inShape)
	if err != nil {
		return nil, fmt.Errorf("model %s: input %q: %w", cfg.Path, m.inName, err)
	}
	outB, outN, err := batch1(m.outShape)
	if err != nil {
		return nil, fmt.Errorf("model %s: output %q: %w", cfg.Path, m.outName, err)
	}
	m.inSize, m.outSize = inN, outN
	m.maxRunBatch = max(cfg.MaxRunBatch, 1)
	if m.maxRunBatch > 1 && (m.inShape[0] >= 0 || m.outShape[0] >= 0) {
		return nil, fmt.Errorf("model %s: batched runs (max %d) need a dynamic batch dimension; input shape %v, output shape %v",
			cfg.Path, m.maxRunBatch, m.inShape, m.outShape)
	}
	opts, err := ort.NewSessionOptions()
	if err != nil {
		return nil, err
	}
	defer opts.Destroy()
	// Spinning threads busy-wait for work: off, or an idle server burns its quota.
	for _, kv := range [][2]string{{"session.intra_op.allow_spinning", "0"}, {"session.inter_op.allow_spinning", "0"}} {
		if err := opts.AddSessionConfigEntry(kv[0], kv[1]); err != nil {
			return nil, fmt.Errorf("session option %s: %w", kv[0], err)
		}
	}
	if err := opts.SetIntraOpNumThreads(cfg.IntraOpThreads); err != nil {
		return nil, err
	}
	if err := opts.SetInterOpNumThreads(1); err != nil {
		return nil, err
	}
	for i := 0; i < cfg.Workers; i++ {
		w := &worker{}
		if w.in, err = ort.NewEmptyTensor[float32](ort.NewShape(inB...)); err == nil {
			if w.out, err = ort.NewEmptyTensor[float32](ort.NewShape(outB...)); err == nil {
				w.sess, err = ort.NewAdvancedSession(cfg.Path, []string{m.inName}, []string{m.outName},
					[]ort.Value{w.in}, []ort.Value{w.out}, opts)
			}
		}
		if err == nil && m.maxRunBatch > 1 {
			err = m.addBatched(w, cfg.Path, inB, outB, opts)
		}
		m.workers = append(m.workers, w)
		m.pool <- w
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("model %s: creating session %d: %w", cfg.Path, i, err)
		}
	}
	return m, nil
}

// addBatched gives w a dynamic session and batch-k tensors for k in
// 2..maxRunBatch over one input and one output buffer.
func (m *Model) addBatched(w *worker, path string, inB, outB []int64, opts *ort.SessionOptions) error {
	var err error
	if w.dyn, err = ort.NewDynamicAdvancedSession(path, []string{m.inName}, []string{m.outName}, opts); err != nil {
		return err
	}
	w.bInData = make([]float32, m.maxRunBatch*m.inSize)
	w.bOutData = make([]float32, m.maxRunBatch*m.outSize)
	w.bIn = make([]*ort.Tensor[float32], m.maxRunBatch+1)
	w.bOut = make([]*ort.Tensor[float32], m.maxRunBatch+1)
	for k := 2; k <= m.maxRunBatch; k++ {
		inK, outK := append([]int64(nil), inB...), append([]int64(nil), outB...)
		inK[0], outK[0] = int64(k), int64(k)
		if w.bIn[k], err = ort.NewTensor(ort.NewShape(inK...), w.bInData); err != nil {
			return err
		}
		if w.bOut[k], err = ort.NewTensor(ort.NewShape(outK...), w.bOutData); err != nil {
			return err
		}
	}
	return nil
}

// MaxRunBatch is the most examples one RunBatch call takes.
func (m *Model) MaxRunBatch() int { return m.maxRunBatch }

// RunBatch runs the k = len(in)/InputSize examples of in (1 ≤ k ≤
// MaxRunBatch) as one ONNX Runtime run at batch k on one worker, appending
// the outputs to out. Batch 1 uses the same pre-bound session as Infer.
func (m *Model) RunBatch(ctx context.Context, in []float32, out []float32) ([]float32, error) {
	if len(in) == 0 || len(in)%m.inSize != 0 || len(in)/m.inSize > m.maxRunBatch {
		return out, fmt.Errorf("input has %d values, want a multiple of %d, at most %d examples", len(in), m.inSize, m.maxRunBatch)
	}
	k := len(in) / m.inSize
	if k == 1 {
		return m.Infer(ctx, in, out)
	}
	w, err := m.acquire(ctx)
	if err != nil {
		return out, err
	}
	defer m.release(w)
	copy(w.bInData, in)
	if err := w.dyn.Run([]ort.Value{w.bIn[k]}, []ort.Value{w.bOut[k]}); err != nil {
		return out, fmt.Errorf("onnxruntime run at batch %d: %w", k, err)
	}
	return append(out, w.bOutData[:k*m.outSize]...), nil
}

// batch1 replaces a dynamic leading dim by 1 and returns the shape and its
// element count; other dynamic dims are not supported.
func batch1(shape []int64) ([]int64, int, error) {
	if len(shape) == 0 {
		return nil, 0, errors.New("scalar tensors are not supported")
	}
	out := append([]int64(nil), shape...)
	n := 1
	for i, d := range out {
		if d < 0 {
			if i != 0 {
				return nil, 0, fmt.Errorf("dynamic dimension %d in shape %v: only the batch dimension may be dynamic", i, shape)
			}
			d = 1
			out[i] = 1
		}
		n *= int(d)
	}
	if out[0] != 1 {
		// A fixed batch > 1 would make one example mean several.
		return nil, 0, fmt.Errorf("batch dimension is %d; the server runs batch 1 (export with a dynamic or unit batch)", out[0])
	}
	return out, n, nil
}

// InputName, OutputName, InputShape, OutputShape describe the model's
// tensors (-1 = dynamic dimension).
func (m *Model) InputName() string    { return m.inName }
func (m *Model) OutputName() string   { return m.outName }
func (m *Model) InputShape() []int64  { return append([]int64(nil), m.inShape...) }
func (m *Model) OutputShape() []int64 { return append([]int64(nil), m.outShape...) }

// InputSize and OutputSize are the element counts of one example.
func (m *Model) InputSize() int  { return m.inSize }
func (m *Model) OutputSize() int { return m.outSize }

// Workers is the pool size.
func (m *Model) Workers() int { return len(m.workers) }

// ErrClosed is returned by Infer after Close.
var ErrClosed = errors.New("model closed")

// Infer runs the model on each example of in (len(in) must be a multiple of
// InputSize) at batch 1 on one worker, appending the outputs to out. It
// waits for a free worker until ctx is done.
func (m *Model) Infer(ctx context.Context, in []float32, out []float32) ([]float32, error) {
	if len(in) == 0 || len(in)%m.inSize != 0 {
		return out, fmt.Errorf("input has %d values, want a multiple of %d", len(in), m.inSize)
	}
	w, err := m.acquire(ctx)
	if err != nil {
		return out, err
	}
	defer m.release(w)
	for off := 0; off < len(in); off += m.inSize {
		copy(w.in.GetData(), in[off:off+m.inSize])
		if err := w.sess.Run(); err != nil {
			return out, fmt.Errorf("onnxruntime run: %w", err)
		}
		out = append(out, w.out.GetData()...)
	}
	return out, nil
}

// acquire takes a free worker, waiting until ctx is done; ErrClosed after
// Close. A worker it returns goes back with release.
func (m *Model) acquire(ctx context.Context) (*worker, error) {
	var w *worker
	select {
	case w = <-m.pool:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if m.closed.Load() {
		m.release(w)
		return nil, ErrClosed
	}
	return w, nil
}

func (m *Model) release(w *worker) { m.pool <- w }

// WarmUp runs n zero-input inferences on every worker.
func (m *Model) WarmUp(ctx context.Context, n int) error {
	zero := make([]float32, m.inSize)
	ws := make([]*worker, 0, len(m.workers))
	defer func() {
		for _, w := range ws {
			m.pool <- w
		}
	}()
	// Take every worker so each session is warmed, not the same one n times.
	for range m.workers {
		select {
		case w := <-m.pool:
			ws = append(ws, w)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, w := range ws {
		for i := 0; i < n; i++ {
			copy(w.in.GetData(), zero)
			if err := w.sess.Run(); err != nil {
				return fmt.Errorf("warm-up run: %w", err)
			}
		}
	}
	return nil
}

// Close waits for running inferences, then destroys the sessions; later
// Infer calls fail with ErrClosed.
func (m *Model) Close() {
	m.closeOnce.Do(func() {
		m.closed.Store(true)
		// Holding every worker means no Run is in progress.
		for range m.workers {
			<-m.pool
		}
		for _, w := range m.workers {
			m.pool <- w
			if w.sess != nil {
				_ = w.sess.Destroy()
			}
			if w.in != nil {
				_ = w.in.Destroy()
			}
			if w.out != nil {
				_ = w.out.Destroy()
			}
			if w.dyn != nil {
				_ = w.dyn.Destroy()
			}
			for _, t := range append(w.bIn, w.bOut...) {
				if t != nil {
					_ = t.Destroy()
				}
			}
		}
	})
}
