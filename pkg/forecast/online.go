package forecast

import (
	"errors"
	"fmt"
)

// Trainer fits a forecaster on a service's own per-second history.
type Trainer interface {
	// Name names the forecaster it makes ("lstm", "linear").
	Name() string
	// Train fits on history (per-second counts, oldest first). prev is the
	// forecaster the last Train returned (nil the first time), so a trainer
	// may warm-start from it.
	Train(history []float64, prev Forecaster) (Forecaster, error)
}

// LSTMTrainer trains the paper's LSTM on the per-minute maxima of history.
// With WarmStart it continues from the previous model (keeping its scaler)
// instead of starting from fresh weights, which needs far fewer epochs.
type LSTMTrainer struct {
	Config    TrainConfig
	WarmStart bool
	// WarmEpochs replaces Config.Epochs when warm-starting; 0 means 2.
	WarmEpochs int
}

var _ Trainer = LSTMTrainer{}

// Name implements Trainer.
func (LSTMTrainer) Name() string { return "lstm" }

// Train implements Trainer.
func (t LSTMTrainer) Train(history []float64, prev Forecaster) (Forecaster, error) {
	maxima := MinuteMaximaFromStart(history[len(history)%MinuteSeconds:])
	if p, ok := prev.(*LSTM); ok && t.WarmStart && p != nil {
		m := p.clone()
		cfg := t.Config
		cfg.Epochs = t.WarmEpochs
		if cfg.Epochs == 0 {
			cfg.Epochs = 2
		}
		if err := m.Fit(maxima, cfg); err != nil {
			return nil, err
		}
		return m, nil
	}
	return TrainLSTM(maxima, t.Config)
}

func (m *LSTM) clone() *LSTM {
	c := *m
	c.Wx = append([]float64(nil), m.Wx...)
	c.Wh = append([]float64(nil), m.Wh...)
	c.B = append([]float64(nil), m.B...)
	c.Wd = append([]float64(nil), m.Wd...)
	return &c
}

// LinearTrainer fits the Linear forecaster (cheap: milliseconds per day of
// history).
type LinearTrainer struct{ Config LinearConfig }

var _ Trainer = LinearTrainer{}

// Name implements Trainer.
func (LinearTrainer) Name() string { return "linear" }

// Train implements Trainer.
func (t LinearTrainer) Train(history []float64, _ Forecaster) (Forecaster, error) {
	return FitLinear(history[len(history)%MinuteSeconds:], t.Config)
}

// OnlineConfig is how Online retrains.
type OnlineConfig struct {
	// RetrainEvery is how often to retrain, in minutes of history; default 60.
	RetrainEvery int
	// MinTrainMinutes is how much history the first training needs; until
	// then (and whenever the trained model cannot forecast) Fallback is
	// used. Default 120.
	MinTrainMinutes int
	// MaxTrainMinutes caps the history each retraining reads (the most
	// recent part); default 14 days, as the paper's training split.
	MaxTrainMinutes int
	// Fallback forecasts until a model exists; nil means the paper's
	// EWMA (span 10 over per-minute maxima).
	Fallback Forecaster
}

// Validate reports every problem with c.
func (c OnlineConfig) Validate() error {
	var errs []error
	if c.RetrainEvery < 0 {
		errs = append(errs, fmt.Errorf("retrain every %d minutes: want >= 1 (0 = default 60)", c.RetrainEvery))
	}
	if c.MinTrainMinutes < 0 {
		errs = append(errs, fmt.Errorf("min train minutes %d: want >= 1 (0 = default 120)", c.MinTrainMinutes))
	}
	if c.MaxTrainMinutes < 0 || (c.MaxTrainMinutes > 0 && c.MaxTrainMinutes < c.MinTrainMinutes) {
		errs = append(errs, fmt.Errorf("max train minutes %d: want >= min train minutes %d (0 = default 20160)", c.MaxTrainMinutes, c.MinTrainMinutes))
	}
	return errors.Join(errs...)
}

// Online retrains a forecaster on the service's own observed history every
// RetrainEvery minutes, using Fallback until MinTrainMinutes of history
// exist. It is pure and deterministic: no goroutines, no clock. Its clock
// is the history itself: the schedule is keyed on len(history) (seconds
// observed since the service started), so callers must pass the whole
// history since start (as decider.Observation.History does), growing by the
// elapsed seconds between calls. Retraining happens inside the Forecast
// call that crosses a retrain boundary, so that call is slow (an LSTM:
// seconds; Linear: milliseconds); the simulator's results do not depend on
// when the call happens, only on the history.
//
// Online keeps state, so one value serves one service; it is not safe for
// concurrent use.
type Online struct {
	trainer Trainer
	cfg     OnlineConfig

	model     Forecaster
	trainedAt int // len(history) at the last successful training; -1 never
	triedAt   int // len(history) at the last attempt
	lastErr   error
	trainings int
}

var _ Forecaster = (*Online)(nil)

// NewOnline returns an Online over trainer with cfg's defaults filled in.
func NewOnline(trainer Trainer, cfg OnlineConfig) (*Online, error) {
	if trainer == nil {
		return nil, errors.New("online: nil trainer")
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("online: %w", err)
	}
	if cfg.RetrainEvery == 0 {
		cfg.RetrainEvery = 60
	}
	if cfg.MinTrainMinutes == 0 {
		cfg.MinTrainMinutes = 120
	}
	if cfg.MaxTrainMinutes == 0 {
		cfg.MaxTrainMinutes = max(14*1440, cfg.MinTrainMinutes)
	}
	if cfg.Fallback == nil {
		cfg.Fallback = EWMA{Span: 10}
	}
	return &Online{trainer: trainer, cfg: cfg, trainedAt: -1, triedAt: -1}, nil
}

// Name implements Forecaster.
func (o *Online) Name() string { return "online(" + o.trainer.Name() + ")" }

// OnlineStatus describes an Online's state for logs and reports.
type OnlineStatus struct {
	Trainings     int    // successful trainings so far
	TrainedAtSecs int    // history length at the last training; -1 never
	Using         string // the forecaster the last Forecast used
	LastError     string // last training error, "" if none
}

// Status reports what Online is doing.
func (o *Online) Status() OnlineStatus {
	s := OnlineStatus{Trainings: o.trainings, TrainedAtSecs: o.trainedAt, Using: o.cfg.Fallback.Name()}
	if o.model != nil {
		s.Using = o.model.Name()
	}
	if o.lastErr != nil {
		s.LastError = o.lastErr.Error()
	}
	return s
}

// Forecast implements Forecaster: it retrains when due, then forecasts with
// the trained model, or with Fallback if there is none yet or it cannot
// forecast this history (e.g. too short for its lookback). A failed
// training keeps the previous model and is retried at the next boundary.
func (o *Online) Forecast(history []float64) (float64, error) {
	if err := checkTail(history, MinuteSeconds); err != nil {
		return 0, err
	}
	n := len(history)
	every := o.cfg.RetrainEvery * MinuteSeconds
	due := n >= o.cfg.MinTrainMinutes*MinuteSeconds &&
		(o.triedAt < 0 || n-o.triedAt >= every || n < o.triedAt)
	if due {
		o.triedAt = n
		train := history[max(n-o.cfg.MaxTrainMinutes*MinuteSeconds, 0):]
		if err := ValidateSeries(train); err != nil {
			return 0, fmt.Errorf("online: %w", err)
		}
		m, err := o.trainer.Train(train, o.model)
		if err != nil {
			o.lastErr = err
		} else {
			o.model, o.trainedAt, o.lastErr = m, n, nil
			o.trainings++
		}
	}
	if o.model != nil {
		if v, err := o.model.Forecast(history); err == nil {
			return v, nil
		}
	}
	return o.cfg.Fallback.Forecast(history)
}
