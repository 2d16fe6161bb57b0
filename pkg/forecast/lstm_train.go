package forecast

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"gonum.org/v1/gonum/floats"
)

// TrainConfig is how TrainLSTM trains. The defaults are the paper's Keras
// settings (adapter/forecasters/lstm_forecaster.py).
type TrainConfig struct {
	Units        int     // LSTM units; paper 25
	Lookback     int     // input minutes; paper 10
	Epochs       int     // passes over the data; paper 30
	BatchSize    int     // samples per Adam step; paper 64
	LearningRate float64 // Adam step size; Keras default 0.001
	L1           float64 // L1 penalty on the input kernel; paper 1e-5 (0 = off)
	Seed         uint64  // initial weights and shuffling; paper tf seed 7
	// Workers computes a batch's gradients in parallel. The result does not
	// depend on it: a batch is cut into fixed chunks whose gradients are
	// summed in chunk order. 0 means 2.
	Workers int
	// Data is a free-text note stored in the model file.
	Data string
	// Progress, when set, is called after every batch (for progress bars).
	Progress func(TrainProgress)
}

// TrainProgress reports training progress.
type TrainProgress struct {
	Epoch, Epochs   int     // 1-based current epoch, total
	Batch, Batches  int     // 1-based batch in this epoch, total per epoch
	EpochLoss       float64 // mean scaled MSE of the batches so far this epoch
	SamplesPerEpoch int
}

// DefaultTrainConfig returns the paper's settings.
func DefaultTrainConfig() TrainConfig {
	return TrainConfig{Units: 25, Lookback: 10, Epochs: 30, BatchSize: 64, LearningRate: 1e-3, L1: 1e-5, Seed: 7}
}

// Validate reports every problem with c.
func (c TrainConfig) Validate() error {
	var errs []error
	if c.Units < 1 || c.Units > 1024 {
		errs = append(errs, fmt.Errorf("units %d: want 1..1024", c.Units))
	}
	if c.Lookback < 1 || c.Lookback > 1440 {
		errs = append(errs, fmt.Errorf("lookback %d minutes: want 1..1440", c.Lookback))
	}
	if c.Epochs < 1 || c.Epochs > 10000 {
		errs = append(errs, fmt.Errorf("epochs %d: want 1..10000", c.Epochs))
	}
	if c.BatchSize < 1 || c.BatchSize > 1<<20 {
		errs = append(errs, fmt.Errorf("batch size %d: want >= 1", c.BatchSize))
	}
	if !(c.LearningRate > 0 && c.LearningRate < 1) {
		errs = append(errs, fmt.Errorf("learning rate %v: want (0,1)", c.LearningRate))
	}
	if !(c.L1 >= 0 && c.L1 < 1) {
		errs = append(errs, fmt.Errorf("L1 %v: want [0,1)", c.L1))
	}
	if c.Workers < 0 || c.Workers > 256 {
		errs = append(errs, fmt.Errorf("workers %d: want 0..256", c.Workers))
	}
	return errors.Join(errs...)
}

// TrainLSTM trains a new LSTM on per-minute maxima (oldest first): samples
// are every window maxima[i:i+Lookback] → maxima[i+Lookback]. The scaler is
// fitted to maxima (min-max). The same data and config give bit-identical
// weights on every machine and for any Workers.
func TrainLSTM(maxima []float64, cfg TrainConfig) (*LSTM, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("train lstm: %w", err)
	}
	if err := ValidateSeries(maxima); err != nil {
		return nil, fmt.Errorf("train lstm: %w", err)
	}
	if len(maxima) < cfg.Lookback+1 {
		return nil, fmt.Errorf("train lstm: %w: need >= %d minutes, have %d", ErrShortHistory, cfg.Lookback+1, len(maxima))
	}
	m := newLSTM(cfg.Units, cfg.Lookback, cfg.Seed)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, v := range maxima {
		lo, hi = min(lo, v), max(hi, v)
	}
	if hi-lo < 1 { // a flat series: keep the scale sane
		hi = lo + 1
	}
	m.Scaler = Scaler{Min: lo, Max: hi}
	if err := m.Fit(maxima, cfg); err != nil {
		return nil, err
	}
	return m, nil
}

// newLSTM initialises weights as Keras does: glorot-uniform input and dense
// kernels, orthogonal recurrent kernel, zero biases except the forget gate's
// (1, Keras unit_forget_bias).
func newLSTM(u, lookback int, seed uint64) *LSTM {
	rng := rand.New(rand.NewPCG(seed, 0x1f0c_a57e))
	m := &LSTM{Units: u, Lookback: lookback,
		Wx: make([]float64, 4*u), Wh: make([]float64, 4*u*u), B: make([]float64, 4*u), Wd: make([]float64, u)}
	lim := math.Sqrt(6 / float64(1+4*u))
	for i := range m.Wx {
		m.Wx[i] = (2*rng.Float64() - 1) * lim
	}
	// Orthogonal U×4U: Gram-Schmidt on U random normal rows of length 4U.
	g4 := 4 * u
	for j := range u {
		row := m.Wh[j*g4 : (j+1)*g4]
		for {
			for k := range row {
				row[k] = rng.NormFloat64()
			}
			for p := range j {
				prev := m.Wh[p*g4 : (p+1)*g4]
				d := dot(row, prev)
				for k := range row {
					row[k] -= d * prev[k]
				}
			}
			n := math.Sqrt(dot(row, row))
			if n > 1e-6 {
				for k := range row {
					row[k] /= n
				}
				break
			}
		}
	}
	for k := range u {
		m.B[u+k] = 1
	}
	lim = math.Sqrt(6 / float64(u+1))
	for i := range m.Wd {
		m.Wd[i] = (2*rng.Float64() - 1) * lim
	}
	return m
}

func dot(a, b []float64) float64 {
	s := 0.0
	for i := range a {
		s += a[i] * b[i]
	}
	return s
}

// grads holds one chunk's gradient sums.
type grads struct {
	wx, wh, b, wd []float64
	bd, loss      float64
}

func newGrads(u int) *grads {
	return &grads{wx: make([]float64, 4*u), wh: make([]float64, 4*u*u), b: make([]float64, 4*u), wd: make([]float64, u)}
}

func (g *grads) zero() {
	clear(g.wx)
	clear(g.wh)
	clear(g.b)
	clear(g.wd)
	g.bd, g.loss = 0, 0
}

// Fit continues training m on maxima with cfg (Units and Lookback must match
// m; the scaler is kept). Online uses it to warm-start retraining.
func (m *LSTM) Fit(maxima []float64, cfg TrainConfig) error {
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("train lstm: %w", err)
	}
	if cfg.Units != m.Units || cfg.Lookback != m.Lookback {
		return fmt.Errorf("train lstm: config %d units × %d minutes does not match the model's %d × %d",
			cfg.Units, cfg.Lookback, m.Units, m.Lookback)
	}
	if err := ValidateSeries(maxima); err != nil {
		return fmt.Errorf("train lstm: %w", err)
	}
	L := m.Lookback
	n := len(maxima) - L
	if n < 1 {
		return fmt.Errorf("train lstm: %w: need >= %d minutes, have %d", ErrShortHistory, L+1, len(maxima))
	}
	if err := m.Scaler.check(); err != nil {
		return fmt.Errorf("train lstm: %w", err)
	}
	scaled := make([]float64, len(maxima))
	for i, v := range maxima {
		scaled[i] = m.Scaler.scale(v)
	}
	u := m.Units
	const chunk = 16 // samples per gradient chunk: fixes the summation order
	maxChunks := (cfg.BatchSize + chunk - 1) / chunk
	gs := make([]*grads, maxChunks)
	ws := make([]lstmWork, maxChunks)
	for i := range gs {
		gs[i] = newGrads(u)
		ws[i].init(u, L)
	}
	workers := cfg.Workers
	if workers == 0 {
		workers = 2
	}
	workers = min(workers, maxChunks)

	opt := newAdam(m, cfg.LearningRate)
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x5eed_0f_da7a))
	perm := make([]int, n)
	for i := range perm {
		perm[i] = i
	}
	batches := (n + cfg.BatchSize - 1) / cfg.BatchSize
	total := newGrads(u)
	for epoch := 1; epoch <= cfg.Epochs; epoch++ {
		rng.Shuffle(n, func(i, j int) { perm[i], perm[j] = perm[j], perm[i] })
		var epochLoss float64
		for b := range batches {
			idx := perm[b*cfg.BatchSize : min((b+1)*cfg.BatchSize, n)]
			nc := (len(idx) + chunk - 1) / chunk
			inv := 1 / float64(len(idx))
			run := func(c int) {
				g := gs[c]
				g.zero()
				for _, s := range idx[c*chunk : min((c+1)*chunk, len(idx))] {
					m.backward(scaled[s:s+L], scaled[s+L], inv, &ws[c], g)
				}
			}
			if workers <= 1 || nc == 1 {
				for c := range nc {
					run(c)
				}
			} else {
				var wg sync.WaitGroup
				next := make(chan int, nc)
				for c := range nc {
					next <- c
				}
				close(next)
				for range min(workers, nc) {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for c := range next {
							run(c)
						}
					}()
				}
				wg.Wait()
			}
			total.zero()
			for c := range nc {
				g := gs[c]
				addTo(total.wx, g.wx)
				addTo(total.wh, g.wh)
				addTo(total.b, g.b)
				addTo(total.wd, g.wd)
				total.bd += g.bd
				total.loss += g.loss
			}
			if cfg.L1 > 0 {
				for i, w := range m.Wx {
					if w > 0 {
						total.wx[i] += cfg.L1
					} else if w < 0 {
						total.wx[i] -= cfg.L1
					}
				}
			}
			opt.step(m, total)
			epochLoss += total.loss
			if cfg.Progress != nil {
				cfg.Progress(TrainProgress{Epoch: epoch, Epochs: cfg.Epochs, Batch: b + 1, Batches: batches,
					EpochLoss: epochLoss / float64(min((b+1)*cfg.BatchSize, n)), SamplesPerEpoch: n})
			}
		}
		m.Trained.FinalLoss = epochLoss / float64(n)
		if math.IsNaN(m.Trained.FinalLoss) || math.IsInf(m.Trained.FinalLoss, 0) {
			return fmt.Errorf("train lstm: loss diverged to %v in epoch %d (lower the learning rate)", m.Trained.FinalLoss, epoch)
		}
	}
	m.Trained = TrainInfo{Data: cfg.Data, Samples: n, Epochs: m.Trained.Epochs + cfg.Epochs, BatchSize: cfg.BatchSize,
		Seed: cfg.Seed, FinalLoss: m.Trained.FinalLoss}
	return nil
}

func addTo(dst, src []float64) { floats.Add(dst, src) }

// backward runs x forward, adds the loss (y−target)²·inv and its gradient
// (2(y−target)·inv) back-propagated through time into g.
func (m *LSTM) backward(x []float64, target, inv float64, w *lstmWork, g *grads) {
	u := m.Units
	g4 := 4 * u
	T := len(x)
	y := m.forward(x, w)
	e := y - target
	g.loss += e * e
	dy := 2 * e * inv
	hT := w.h[T*u : (T+1)*u]
	for k, v := range hT {
		g.wd[k] += dy * v
		w.dh[k] = dy * m.Wd[k]
	}
	g.bd += dy
	clear(w.dc)
	dz := w.dz
	for t := T - 1; t >= 0; t-- {
		a := w.a[t*g4 : (t+1)*g4]
		z := w.z[t*g4 : (t+1)*g4]
		cp := w.c[t*u : (t+1)*u]
		cn := w.c[(t+1)*u : (t+2)*u]
		hp := w.h[t*u : (t+1)*u]
		for k := range u {
			ig, fg, gg, og := a[k], a[u+k], a[2*u+k], a[3*u+k]
			dh := w.dh[k]
			var rc, dcn float64
			dcn = w.dc[k]
			if cn[k] > 0 {
				rc = cn[k]
				dcn += dh * og
			}
			do := dh * rc
			dz[k] = dcn * gg * ig * (1 - ig)
			dz[u+k] = dcn * cp[k] * fg * (1 - fg)
			if z[2*u+k] > 0 {
				dz[2*u+k] = dcn * ig
			} else {
				dz[2*u+k] = 0
			}
			dz[3*u+k] = do * og * (1 - og)
			w.dc[k] = dcn * fg
		}
		floats.AddScaled(g.wx, x[t], dz)
		floats.Add(g.b, dz)
		for j, hj := range hp {
			if hj != 0 {
				floats.AddScaled(g.wh[j*g4:(j+1)*g4], hj, dz)
			}
			if t > 0 {
				w.dh[j] = floats.Dot(m.Wh[j*g4:(j+1)*g4], dz)
			}
		}
	}
}

// adam is Keras' Adam (β1 0.9, β2 0.999, ε 1e-7) over the model's weights.
type adam struct {
	lr                     float64
	t                      int
	mx, vx, mh, vh, mb, vb []float64
	md, vd                 []float64
	mbd, vbd               float64
}

func newAdam(m *LSTM, lr float64) *adam {
	u := m.Units
	return &adam{lr: lr,
		mx: make([]float64, 4*u), vx: make([]float64, 4*u),
		mh: make([]float64, 4*u*u), vh: make([]float64, 4*u*u),
		mb: make([]float64, 4*u), vb: make([]float64, 4*u),
		md: make([]float64, u), vd: make([]float64, u)}
}

func (a *adam) step(m *LSTM, g *grads) {
	const b1, b2, eps = 0.9, 0.999, 1e-7
	a.t++
	lrT := a.lr * math.Sqrt(1-math.Pow(b2, float64(a.t))) / (1 - math.Pow(b1, float64(a.t)))
	upd := func(w, g, mm, vv []float64) {
		for i, gi := range g {
			mm[i] = b1*mm[i] + (1-b1)*gi
			vv[i] = b2*vv[i] + (1-b2)*gi*gi
			w[i] -= lrT * mm[i] / (math.Sqrt(vv[i]) + eps)
		}
	}
	upd(m.Wx, g.wx, a.mx, a.vx)
	upd(m.Wh, g.wh, a.mh, a.vh)
	upd(m.B, g.b, a.mb, a.vb)
	upd(m.Wd, g.wd, a.md, a.vd)
	a.mbd = b1*a.mbd + (1-b1)*g.bd
	a.vbd = b2*a.vbd + (1-b2)*g.bd*g.bd
	m.Bd -= lrT * a.mbd / (math.Sqrt(a.vbd) + eps)
}
