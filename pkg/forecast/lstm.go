package forecast

import (
	"fmt"
	"math"

	"gonum.org/v1/gonum/floats"
)

// LSTM is the paper's forecaster: Keras
//
//	Sequential[Input(10,1), LSTM(25, activation="relu"), Dense(1)]
//
// reading the per-minute maxima of the last Lookback minutes and predicting
// the next minute's maximum. Gates use the sigmoid (Keras'
// recurrent_activation); the candidate and the output squashing use relu
// (the paper's activation="relu"):
//
//	z   = x_t·Wx + h_{t-1}·Wh + B            (4·Units: gates i, f, g, o)
//	c_t = σ(z_f)⊙c_{t-1} + σ(z_i)⊙relu(z_g)
//	h_t = σ(z_o)⊙relu(c_t)
//	y   = h_T·Wd + Bd
//
// Inputs and target are scaled by the Scaler fitted on the training data
// (x' = (x − Min)/(Max − Min)); the output is unscaled. A window below
// Min is lifted into the range and its forecast scaled back (see
// forecastMinutes). Gate order and
// weight layout match Keras (kernel 1×4U, recurrent kernel U×4U, row-major),
// so a Keras model's weights can be copied in.
type LSTM struct {
	Units    int
	Lookback int
	Wx       []float64 // 4·Units: input kernel (input size 1)
	Wh       []float64 // Units × 4·Units, row-major: recurrent kernel
	B        []float64 // 4·Units
	Wd       []float64 // Units: dense kernel
	Bd       float64
	Scaler   Scaler
	// Trained describes how the weights were made (for the file and docs).
	Trained TrainInfo
}

// Scaler maps RPS to the network's input range: x' = (x − Min)/(Max − Min).
type Scaler struct {
	Min float64 `json:"min"`
	Max float64 `json:"max"`
}

func (s Scaler) scale(x float64) float64   { return (x - s.Min) / (s.Max - s.Min) }
func (s Scaler) unscale(x float64) float64 { return x*(s.Max-s.Min) + s.Min }

func (s Scaler) check() error {
	if math.IsNaN(s.Min) || math.IsNaN(s.Max) || math.IsInf(s.Min, 0) || math.IsInf(s.Max, 0) || !(s.Max > s.Min) {
		return fmt.Errorf("scaler min %v max %v: want finite min < max", s.Min, s.Max)
	}
	return nil
}

// TrainInfo records how a model was trained.
type TrainInfo struct {
	Data      string  `json:"data,omitempty"` // e.g. "twitter-trace first 14 days, zeros dropped"
	Samples   int     `json:"samples"`
	Epochs    int     `json:"epochs"`
	BatchSize int     `json:"batchSize"`
	Seed      uint64  `json:"seed"`
	FinalLoss float64 `json:"finalLoss"` // MSE on scaled targets, last epoch
	// TrainSeconds is the wall time training took, as measured by the caller
	// (this package reads no clock); 0 if unknown.
	TrainSeconds float64 `json:"trainSeconds,omitempty"`
	// TrainCPUSeconds is the process CPU time (user+system) training took,
	// as measured by the caller; on a shared machine it is the fairer
	// figure. 0 if unknown.
	TrainCPUSeconds float64 `json:"trainCpuSeconds,omitempty"`
}

var (
	_ Forecaster       = (*LSTM)(nil)
	_ minuteForecaster = (*LSTM)(nil)
)

// Name implements Forecaster.
func (m *LSTM) Name() string { return "lstm" }

// Forecast implements Forecaster. It needs Lookback whole minutes of
// history (600 s for the paper's model); shorter history is ErrShortHistory.
func (m *LSTM) Forecast(history []float64) (float64, error) {
	if m == nil || len(m.Wx) == 0 {
		return 0, ErrNotTrained
	}
	if err := checkTail(history, m.Lookback*MinuteSeconds); err != nil {
		return 0, err
	}
	if err := needSeconds(history, m.Lookback*MinuteSeconds); err != nil {
		return 0, fmt.Errorf("lstm: %w", err)
	}
	return m.forecastMinutes(MinuteMaxima(history, m.Lookback))
}

func (m *LSTM) minutesNeeded() int { return m.Lookback }
func (m *LSTM) minMinutes() int    { return m.Lookback }

func (m *LSTM) forecastMinutes(maxima []float64) (float64, error) {
	if m == nil || len(m.Wx) == 0 {
		return 0, ErrNotTrained
	}
	if len(maxima) < m.Lookback {
		return 0, fmt.Errorf("lstm: %w: need %d minutes, have %d", ErrShortHistory, m.Lookback, len(maxima))
	}
	maxima = maxima[len(maxima)-m.Lookback:]
	// A window below the training range is lifted into it: the network
	// sees the window scaled so that its mean is Scaler.Min, and the
	// forecast is scaled back. Unlifted, the network's output there is an
	// offset it learned at the trace's own levels, not a forecast: the
	// built-in model (trained on 49–388 RPS) forecast 15.3 RPS for a steady
	// 9 RPS and 8.5 for a steady 1, and on the Twitter test split scaled to
	// 3 % (the rates of a small ResNet service) its mean error was 322 %
	// (lifted: 10.5 %; docs/forecasting.md, "Scale"). Windows within the
	// range — the whole trace at its own scale — are unchanged. Above it
	// the model is left as trained (see the same section).
	lift := 1.0
	if mean := floats.Sum(maxima) / float64(len(maxima)); mean == 0 {
		return 0, nil // an idle window: no load to forecast at any scale
	} else if mean < m.Scaler.Min {
		lift = m.Scaler.Min / mean
	}
	x := make([]float64, m.Lookback)
	for i, v := range maxima {
		x[i] = m.Scaler.scale(v * lift)
	}
	var ws lstmWork
	ws.init(m.Units, m.Lookback)
	y := m.Scaler.unscale(m.forward(x, &ws)) / lift
	if math.IsNaN(y) || math.IsInf(y, 0) {
		return 0, fmt.Errorf("lstm: %w: output %v for inputs far outside the training range [%g, %g]",
			ErrBadValue, y, m.Scaler.Min, m.Scaler.Max)
	}
	// The dense output is unbounded; a rate cannot be negative.
	return max(y, 0), nil
}

// Validate checks shapes and that every weight is finite.
func (m *LSTM) Validate() error {
	u := m.Units
	switch {
	case u < 1 || u > 1024:
		return fmt.Errorf("lstm: units %d, want 1..1024", u)
	case m.Lookback < 1 || m.Lookback > 1440:
		return fmt.Errorf("lstm: lookback %d minutes, want 1..1440", m.Lookback)
	case len(m.Wx) != 4*u:
		return fmt.Errorf("lstm: input kernel has %d weights, want 4×units = %d", len(m.Wx), 4*u)
	case len(m.Wh) != 4*u*u:
		return fmt.Errorf("lstm: recurrent kernel has %d weights, want 4×units² = %d", len(m.Wh), 4*u*u)
	case len(m.B) != 4*u:
		return fmt.Errorf("lstm: bias has %d weights, want 4×units = %d", len(m.B), 4*u)
	case len(m.Wd) != u:
		return fmt.Errorf("lstm: dense kernel has %d weights, want units = %d", len(m.Wd), u)
	}
	for name, ws := range map[string][]float64{"input kernel": m.Wx, "recurrent kernel": m.Wh, "bias": m.B, "dense kernel": m.Wd, "dense bias": {m.Bd}} {
		for i, w := range ws {
			if math.IsNaN(w) || math.IsInf(w, 0) {
				return fmt.Errorf("lstm: %s[%d] = %v is not finite", name, i, w)
			}
		}
	}
	if err := m.Scaler.check(); err != nil {
		return fmt.Errorf("lstm: %w", err)
	}
	return nil
}

// lstmWork holds one sequence's activations for the forward pass and BPTT.
type lstmWork struct {
	z  []float64 // T × 4U pre-activations
	a  []float64 // T × 4U activations (σ(i), σ(f), relu(g), σ(o))
	c  []float64 // (T+1) × U cell states, c[0] = 0
	h  []float64 // (T+1) × U hidden states, h[0] = 0
	dh []float64 // U
	dc []float64 // U
	dz []float64 // 4U
}

func (w *lstmWork) init(u, t int) {
	w.z = make([]float64, t*4*u)
	w.a = make([]float64, t*4*u)
	w.c = make([]float64, (t+1)*u)
	w.h = make([]float64, (t+1)*u)
	w.dh = make([]float64, u)
	w.dc = make([]float64, u)
	w.dz = make([]float64, 4*u)
}

func sigmoid(x float64) float64 { return 1 / (1 + math.Exp(-x)) }

// forward runs one scaled sequence x (len Lookback) and returns the scaled
// output, leaving activations in w for backward.
func (m *LSTM) forward(x []float64, w *lstmWork) float64 {
	u := m.Units
	g4 := 4 * u
	for t, xt := range x {
		z := w.z[t*g4 : (t+1)*g4]
		a := w.a[t*g4 : (t+1)*g4]
		hp := w.h[t*u : (t+1)*u]
		cp := w.c[t*u : (t+1)*u]
		hn := w.h[(t+1)*u : (t+2)*u]
		cn := w.c[(t+1)*u : (t+2)*u]
		for k := range g4 {
			z[k] = xt*m.Wx[k] + m.B[k]
		}
		for j, hj := range hp {
			if hj != 0 { // relu makes many hidden units exactly 0
				floats.AddScaled(z, hj, m.Wh[j*g4:(j+1)*g4])
			}
		}
		for k := range u {
			a[k] = sigmoid(z[k])
			a[u+k] = sigmoid(z[u+k])
			a[2*u+k] = max(z[2*u+k], 0)
			a[3*u+k] = sigmoid(z[3*u+k])
			cn[k] = a[u+k]*cp[k] + a[k]*a[2*u+k]
			hn[k] = a[3*u+k] * max(cn[k], 0)
		}
	}
	hT := w.h[len(x)*u : (len(x)+1)*u]
	y := m.Bd
	for k, v := range hT {
		y += v * m.Wd[k]
	}
	return y
}
