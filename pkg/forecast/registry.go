package forecast

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Specs lists the forecaster specs New understands, for --help texts.
const Specs = `last            last minute's max (the paper's reference baseline)
max[:DUR]       max of the last DUR (default 10m), e.g. max:5m
ewma[:SPAN]     pandas ewm(span=SPAN).mean() of per-minute maxima (default 10)
holt-winters    additive Holt-Winters on per-minute maxima, daily season
linear          linear model on the last 3 minutes' maxima, means and shape (built-in, Twitter)
quantile[:Q]    linear × the Q-quantile (default 0.95) of its last 120 actual/forecast ratios
lstm            the paper's LSTM (built-in model trained on the Twitter trace)
paper           the paper's online forecaster: EWMA(10) for the first 10 min, then LSTM; ×1.10
online:M[:N]    retrain M (lstm or linear) on the service's own history every N minutes
                (default 60), EWMA(10) until 120 minutes exist; lstm warm-starts
                (2 epochs on the last day), linear refits on the last 14 days
Append decorators with commas: headroom=PCT, floor=RPS, cap=RPS
(e.g. "last,headroom=10", "ewma:5,floor=1,cap=400").`

// Option changes how New builds forecasters.
type Option func(*options)

type options struct {
	lstm   *LSTM
	linear *Linear
}

// WithModel makes "lstm" and "paper" use m instead of the built-in model.
func WithModel(m *LSTM) Option { return func(o *options) { o.lstm = m } }

// WithLinear makes "linear" and "quantile" use l instead of the built-in
// model.
func WithLinear(l *Linear) Option { return func(o *options) { o.linear = l } }

// New builds a forecaster from a spec such as "last", "max:10m", "ewma",
// "ewma:5", "holt-winters", "quantile:0.95", "lstm", "paper", optionally
// followed by decorators ",headroom=10", ",floor=1", ",cap=400" applied in
// the order written. See Specs.
//
// "lstm" and "paper" use the built-in model (DefaultLSTM) unless WithModel
// is given. If no built-in model is available, "lstm" fails and "paper"
// falls back to EWMA(span 10) × 1.10 at every step (Paper with a nil Model).
func New(spec string, opts ...Option) (Forecaster, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	parts := strings.Split(strings.TrimSpace(spec), ",")
	f, err := newBase(strings.TrimSpace(parts[0]), &o)
	if err != nil {
		return nil, fmt.Errorf("forecaster %q: %w", spec, err)
	}
	for _, p := range parts[1:] {
		p = strings.TrimSpace(p)
		key, val, ok := strings.Cut(p, "=")
		if !ok {
			return nil, fmt.Errorf("forecaster %q: decorator %q: want key=value", spec, p)
		}
		v, err := strconv.ParseFloat(strings.TrimSuffix(val, "%"), 64)
		if err != nil || v != v {
			return nil, fmt.Errorf("forecaster %q: decorator %q: bad number %q", spec, p, val)
		}
		switch key {
		case "headroom":
			if v <= -100 || v > 1000 {
				return nil, fmt.Errorf("forecaster %q: headroom %v%%: want (-100, 1000]", spec, v)
			}
			f = WithHeadroom(f, v)
		case "floor":
			f = WithFloor(f, v)
		case "cap":
			f = WithCap(f, v)
		default:
			return nil, fmt.Errorf("forecaster %q: unknown decorator %q (want headroom, floor or cap)", spec, key)
		}
	}
	return f, nil
}

func newBase(s string, o *options) (Forecaster, error) {
	name, arg, hasArg := strings.Cut(s, ":")
	noArg := func() error {
		if hasArg {
			return fmt.Errorf("%s takes no argument, got %q", name, arg)
		}
		return nil
	}
	switch name {
	case "last":
		return LastValue{}, noArg()
	case "max":
		d := 10 * time.Minute
		if hasArg {
			var err error
			if d, err = time.ParseDuration(arg); err != nil {
				return nil, fmt.Errorf("max window: %w", err)
			}
			if d < time.Second || d > 30*24*time.Hour {
				return nil, fmt.Errorf("max window %v: want 1s..720h", d)
			}
		}
		return WindowMax{Window: d}, nil
	case "ewma":
		span := 10.0
		if hasArg {
			var err error
			if span, err = strconv.ParseFloat(arg, 64); err != nil || !(span >= 1 && span <= 10000) {
				return nil, fmt.Errorf("ewma span %q: want a number in [1, 10000]", arg)
			}
		}
		return EWMA{Span: span}, nil
	case "holt-winters", "hw":
		return NewHoltWinters(), noArg()
	case "quantile":
		q := 0.95
		if hasArg {
			var err error
			if q, err = strconv.ParseFloat(arg, 64); err != nil || !(q > 0 && q < 1) {
				return nil, fmt.Errorf("quantile %q: want a number in (0, 1)", arg)
			}
		}
		var base Forecaster
		if o.linear != nil {
			base = o.linear
		} else if l, err := DefaultLinear(); err == nil {
			base = l
		}
		return NewQuantile(q, 0, base)
	case "linear":
		if err := noArg(); err != nil {
			return nil, err
		}
		if o.linear != nil {
			return o.linear, nil
		}
		return DefaultLinear()
	case "online":
		kind, every, hasEvery := strings.Cut(arg, ":")
		cfg := OnlineConfig{}
		if hasEvery {
			n, err := strconv.Atoi(every)
			if err != nil || n < 1 || n > 100000 {
				return nil, fmt.Errorf("online retrain interval %q: want whole minutes in 1..100000", every)
			}
			cfg.RetrainEvery = n
		}
		var tr Trainer
		switch kind {
		case "lstm":
			// From scratch (30 epochs) the first time, then 2 warm-start
			// epochs over the last day per retraining, so an hourly retrain
			// costs ~0.1 s of CPU rather than ~20 s.
			tr = LSTMTrainer{Config: DefaultTrainConfig(), WarmStart: true, WarmEpochs: 2}
			cfg.MaxTrainMinutes = 1440
		case "linear":
			tr = LinearTrainer{}
		default:
			return nil, fmt.Errorf("online: trainer %q, want lstm or linear (e.g. online:linear:60)", kind)
		}
		return NewOnline(tr, cfg)
	case "lstm":
		if err := noArg(); err != nil {
			return nil, err
		}
		if o.lstm != nil {
			return o.lstm, nil
		}
		return DefaultLSTM()
	case "paper":
		if err := noArg(); err != nil {
			return nil, err
		}
		m := o.lstm
		if m == nil {
			var err error
			if m, err = DefaultLSTM(); err != nil && !errors.Is(err, ErrNotTrained) {
				return nil, err
			}
		}
		if m == nil {
			return Paper{}, nil
		}
		return Paper{Model: m}, nil
	case "":
		return nil, errors.New("empty spec (want one of last, max, ewma, holt-winters, linear, quantile, lstm, paper, online)")
	default:
		return nil, fmt.Errorf("unknown forecaster %q (want one of last, max, ewma, holt-winters, linear, quantile, lstm, paper, online)", name)
	}
}
