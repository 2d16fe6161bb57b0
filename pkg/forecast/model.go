package forecast

import (
	"bytes"
	_ "embed"
	"fmt"
	"sync"
)

// The built-in models, trained on the first 14 days of the Twitter trace
// (zero-seconds dropped) by
//
//	infadapter forecast train --out-dir pkg/forecast/models
//
// They are small JSON files (format fields infadapter-lstm/v1 and
// infadapter-linear/v1) embedded so "lstm", "paper", "linear" and
// "quantile" work without any file at run time.
var (
	//go:embed models/lstm-twitter.json
	lstmTwitterJSON []byte
	//go:embed models/linear-twitter.json
	linearTwitterJSON []byte
)

var (
	defaultLSTM = sync.OnceValues(func() (*LSTM, error) {
		m, err := LoadLSTM(bytes.NewReader(lstmTwitterJSON))
		if err != nil {
			return nil, fmt.Errorf("built-in lstm model: %w", err)
		}
		return m, nil
	})
	defaultLinear = sync.OnceValues(func() (*Linear, error) {
		l, err := LoadLinear(bytes.NewReader(linearTwitterJSON))
		if err != nil {
			return nil, fmt.Errorf("built-in linear model: %w", err)
		}
		return l, nil
	})
)

// DefaultLSTM returns the built-in LSTM trained on the Twitter trace's
// first 14 days. The model is shared and must not be modified (Forecast
// does not modify it; use Fit only on a model of your own).
func DefaultLSTM() (*LSTM, error) { return defaultLSTM() }

// DefaultLinear returns the built-in Linear forecaster fitted on the
// Twitter trace's first 14 days (shared; do not modify).
func DefaultLinear() (*Linear, error) { return defaultLinear() }
