package forecast

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Model file formats. A model file is one JSON object whose "format" field
// names the model type and the file-format version; a reader refuses other
// versions rather than guessing. docs/forecasting.md documents the fields.
const (
	LSTMFormat   = "infadapter-lstm/v1"
	LinearFormat = "infadapter-linear/v1"
)

// MaxModelBytes bounds a model file (the paper's LSTM is ~60 KB).
const MaxModelBytes = 16 << 20

// lstmFile is the on-disk form of an LSTM (format infadapter-lstm/v1).
type lstmFile struct {
	Format     string      `json:"format"`
	Units      int         `json:"units"`
	Lookback   int         `json:"lookbackMinutes"`
	Activation string      `json:"activation"` // "relu": candidate and output squashing
	GateOrder  string      `json:"gateOrder"`  // "ifco" as Keras (input, forget, cell, output)
	Scaler     Scaler      `json:"scaler"`
	Weights    lstmWeights `json:"weights"`
	Trained    TrainInfo   `json:"trained"`
	Shapes     *lstmShapes `json:"shapes,omitempty"`
}

type lstmShapes struct {
	InputKernel     [2]int `json:"inputKernel"`
	RecurrentKernel [2]int `json:"recurrentKernel"`
	Bias            [1]int `json:"bias"`
	DenseKernel     [2]int `json:"denseKernel"`
}

type lstmWeights struct {
	InputKernel     []float64 `json:"inputKernel"`     // 1 × 4U
	RecurrentKernel []float64 `json:"recurrentKernel"` // U × 4U, row-major
	Bias            []float64 `json:"bias"`            // 4U
	DenseKernel     []float64 `json:"denseKernel"`     // U × 1
	DenseBias       float64   `json:"denseBias"`
}

type linearFile struct {
	Format   string    `json:"format"`
	Minutes  int       `json:"minutes"`
	Tau      float64   `json:"tau"`
	Features []string  `json:"features"`
	Weights  []float64 `json:"weights"`
	Trained  TrainInfo `json:"trained"`
}

// Save writes m as an infadapter-lstm/v1 JSON document.
func (m *LSTM) Save(w io.Writer) error {
	if err := m.Validate(); err != nil {
		return fmt.Errorf("save lstm: %w", err)
	}
	u := m.Units
	f := lstmFile{Format: LSTMFormat, Units: u, Lookback: m.Lookback, Activation: "relu", GateOrder: "ifco",
		Scaler: m.Scaler, Trained: m.Trained,
		Shapes:  &lstmShapes{InputKernel: [2]int{1, 4 * u}, RecurrentKernel: [2]int{u, 4 * u}, Bias: [1]int{4 * u}, DenseKernel: [2]int{u, 1}},
		Weights: lstmWeights{InputKernel: m.Wx, RecurrentKernel: m.Wh, Bias: m.B, DenseKernel: m.Wd, DenseBias: m.Bd}}
	return writeJSON(w, f)
}

// Save writes l as an infadapter-linear/v1 JSON document.
func (l *Linear) Save(w io.Writer) error {
	if err := l.Validate(); err != nil {
		return fmt.Errorf("save linear: %w", err)
	}
	return writeJSON(w, linearFile{Format: LinearFormat, Minutes: l.Minutes, Tau: l.Tau,
		Features: linearFeatureNames(l.Minutes), Weights: l.Weights, Trained: l.Trained})
}

func linearFeatureNames(k int) []string {
	names := []string{"1"}
	for j := k; j >= 1; j-- {
		names = append(names, fmt.Sprintf("max(minute -%d)", j), fmt.Sprintf("mean(minute -%d)", j))
	}
	return append(names, "q0.85(minute -1)", "q0.92(minute -1)", "q0.97(minute -1)", "mean(last 10 s)")
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// readModelJSON reads at most MaxModelBytes and returns the bytes and the
// "format" field.
func readModelJSON(r io.Reader) ([]byte, string, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxModelBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("model file: %w", err)
	}
	if len(b) > MaxModelBytes {
		return nil, "", fmt.Errorf("model file: larger than %d bytes", MaxModelBytes)
	}
	var head struct {
		Format string `json:"format"`
	}
	if err := json.Unmarshal(b, &head); err != nil {
		return nil, "", fmt.Errorf("model file: not a JSON object: %w", err)
	}
	if head.Format == "" {
		return nil, "", errors.New(`model file: no "format" field (want e.g. "` + LSTMFormat + `")`)
	}
	return b, head.Format, nil
}

func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data after the JSON object")
	}
	return nil
}

func checkFormat(got, want string) error {
	if got == want {
		return nil
	}
	kind, _, _ := strings.Cut(want, "/")
	if strings.HasPrefix(got, kind+"/") {
		return fmt.Errorf("model file: format %q is not supported by this build (want %q)", got, want)
	}
	return fmt.Errorf("model file: format %q, want %q", got, want)
}

// LoadLSTM reads an infadapter-lstm/v1 document and validates it: shapes,
// finite weights, a usable scaler. Errors say which field is wrong.
func LoadLSTM(r io.Reader) (*LSTM, error) {
	b, format, err := readModelJSON(r)
	if err != nil {
		return nil, err
	}
	if err := checkFormat(format, LSTMFormat); err != nil {
		return nil, err
	}
	return decodeLSTM(b)
}

func decodeLSTM(b []byte) (*LSTM, error) {
	var f lstmFile
	if err := strictUnmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("model file (%s): %w", LSTMFormat, err)
	}
	if f.Activation != "relu" {
		return nil, fmt.Errorf("model file: activation %q, only \"relu\" is supported", f.Activation)
	}
	if f.GateOrder != "ifco" {
		return nil, fmt.Errorf("model file: gateOrder %q, only \"ifco\" is supported", f.GateOrder)
	}
	if u := f.Units; f.Shapes != nil && *f.Shapes != (lstmShapes{InputKernel: [2]int{1, 4 * u}, RecurrentKernel: [2]int{u, 4 * u}, Bias: [1]int{4 * u}, DenseKernel: [2]int{u, 1}}) {
		return nil, fmt.Errorf("model file: shapes %+v do not match %d units", *f.Shapes, u)
	}
	m := &LSTM{Units: f.Units, Lookback: f.Lookback, Wx: f.Weights.InputKernel, Wh: f.Weights.RecurrentKernel,
		B: f.Weights.Bias, Wd: f.Weights.DenseKernel, Bd: f.Weights.DenseBias, Scaler: f.Scaler, Trained: f.Trained}
	if err := m.Validate(); err != nil {
		return nil, fmt.Errorf("model file: %w", err)
	}
	return m, nil
}

// LoadLinear reads an infadapter-linear/v1 document and validates it.
func LoadLinear(r io.Reader) (*Linear, error) {
	b, format, err := readModelJSON(r)
	if err != nil {
		return nil, err
	}
	if err := checkFormat(format, LinearFormat); err != nil {
		return nil, err
	}
	return decodeLinear(b)
}

func decodeLinear(b []byte) (*Linear, error) {
	var f linearFile
	if err := strictUnmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("model file (%s): %w", LinearFormat, err)
	}
	l := &Linear{Minutes: f.Minutes, Tau: f.Tau, Weights: f.Weights, Trained: f.Trained}
	if err := l.Validate(); err != nil {
		return nil, fmt.Errorf("model file: %w", err)
	}
	return l, nil
}

// LoadModel reads any model file this package writes (LSTM or Linear),
// choosing by its "format" field.
func LoadModel(r io.Reader) (Forecaster, error) {
	b, format, err := readModelJSON(r)
	if err != nil {
		return nil, err
	}
	switch {
	case format == LSTMFormat:
		m, err := decodeLSTM(b)
		if err != nil {
			return nil, err
		}
		return m, nil
	case format == LinearFormat:
		l, err := decodeLinear(b)
		if err != nil {
			return nil, err
		}
		return l, nil
	case strings.HasPrefix(format, "infadapter-lstm/"), strings.HasPrefix(format, "infadapter-linear/"):
		return nil, fmt.Errorf("model file: format %q is not supported by this build (want %q or %q)", format, LSTMFormat, LinearFormat)
	default:
		return nil, fmt.Errorf("model file: unknown format %q (want %q or %q)", format, LSTMFormat, LinearFormat)
	}
}
