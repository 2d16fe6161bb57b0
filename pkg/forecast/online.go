package forecast

import (
	"errors"
	"fmt"
	"time"
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
// exist. It is pure and deterministic: no goroutines, no clock read.
//
// Two ways to call it (use one per Online value):
//
//   - Forecast(history) with the WHOLE history since the service started:
//     the schedule is keyed on len(history), and training reads history.
//   - ForecastAt(now, window) with a sliding window ending at now (the live
//     loop passes only the last 600 s): Online appends the seconds that are
//     new since the previous call to its own record (at most
//     MaxTrainMinutes of it: 14 days ≈ 9.7 MB of float64) and keys the
//     schedule on the seconds observed. Seconds that fall in a gap longer
//     than the window are lost, not invented. The package function
//     ForecastAt calls this when a forecaster (or a decorator around it)
//     supports it.
//
// Retraining happens inside the call that crosses a retrain boundary, so
// that call is slower (an LSTM warm start: ~0.1 s CPU; Linear on 14 days:
// ~0.2–0.8 s); results depend only on the history, not on timing.
//
// Online keeps state, so one value serves one service; it is not safe for
// concurrent use.
type Online struct {
	trainer Trainer
	cfg     OnlineConfig

	model     Forecaster
	trainedAt int // clock (seconds observed) at the last successful training; -1 never
	triedAt   int // clock at the last attempt
	lastErr   error
	trainings int

	// ForecastAt's own record of the load.
	buf      []float64
	observed int   // seconds appended to buf so far (the clock)
	lastSec  int64 // Unix second of the previous ForecastAt's now
	started  bool
}

var (
	_ Forecaster = (*Online)(nil)
	_ Clocked    = (*Online)(nil)
)

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

// Forecast implements Forecaster for callers that pass the whole history
// since start: it retrains when due, then forecasts with the trained model,
// or with Fallback if there is none yet or it cannot forecast this history
// (e.g. too short for its lookback). A failed training keeps the previous
// model and is retried at the next boundary.
func (o *Online) Forecast(history []float64) (float64, error) {
	if err := checkTail(history, MinuteSeconds); err != nil {
		return 0, err
	}
	return o.forecastOn(history, len(history))
}

// ForecastAt implements Clocked for callers that pass a sliding window:
// window holds per-second counts, oldest first, and its last entry is the
// second ending at now.
func (o *Online) ForecastAt(now time.Time, window []float64) (float64, error) {
	if err := checkTail(window, len(window)); err != nil {
		return 0, err
	}
	sec := now.Unix()
	fresh := len(window)
	if o.started {
		if sec < o.lastSec {
			return 0, fmt.Errorf("online: now %v is before the previous call's %v", now.UTC(), time.Unix(o.lastSec, 0).UTC())
		}
		fresh = int(min(sec-o.lastSec, int64(len(window))))
	}
	o.started, o.lastSec = true, sec
	o.buf = append(o.buf, window[len(window)-fresh:]...)
	o.observed += fresh
	if keep := o.cfg.MaxTrainMinutes * MinuteSeconds; len(o.buf) > 2*keep {
		o.buf = append(o.buf[:0], o.buf[len(o.buf)-keep:]...) // amortised O(1) per second
	}
	if len(o.buf) == 0 {
		return 0, ErrEmptyHistory
	}
	return o.forecastOn(o.buf, o.observed)
}

// forecastOn retrains when due at clock (seconds observed) on series' tail
// and forecasts from series.
func (o *Online) forecastOn(series []float64, clock int) (float64, error) {
	every := o.cfg.RetrainEvery * MinuteSeconds
	due := clock >= o.cfg.MinTrainMinutes*MinuteSeconds &&
		(o.triedAt < 0 || clock-o.triedAt >= every || clock < o.triedAt)
	if due {
		o.triedAt = clock
		train := series[max(len(series)-o.cfg.MaxTrainMinutes*MinuteSeconds, 0):]
		if err := ValidateSeries(train); err != nil {
			return 0, fmt.Errorf("online: %w", err)
		}
		m, err := o.trainer.Train(train, o.model)
		if err != nil {
			o.lastErr = err
		} else {
			o.model, o.trainedAt, o.lastErr = m, clock, nil
			o.trainings++
		}
	}
	if o.model != nil {
		if v, err := o.model.Forecast(series); err == nil {
			return v, nil
		}
	}
	return o.cfg.Fallback.Forecast(series)
}
