package forecast

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// minutes builds a per-second history whose per-minute maxima are ms: each
// minute is 59 seconds of ms[i]/2 and one second of ms[i].
func minutes(ms ...float64) []float64 {
	h := make([]float64, 0, len(ms)*MinuteSeconds)
	for _, m := range ms {
		for s := range MinuteSeconds {
			if s == 30 {
				h = append(h, m)
			} else {
				h = append(h, m/2)
			}
		}
	}
	return h
}

func near(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func TestForecasters(t *testing.T) {
	tests := []struct {
		name    string
		f       Forecaster
		history []float64
		want    float64
	}{
		{"last one minute", LastValue{}, minutes(5), 5},
		{"last picks the newest minute", LastValue{}, minutes(100, 7, 30), 30},
		{"last with a partial minute", LastValue{}, []float64{3, 9, 4}, 9},
		{"last reads only 60s", LastValue{}, append([]float64{1000}, minutes(8)...), 8},
		{"window max 2m", WindowMax{Window: 2 * time.Minute}, minutes(100, 7, 30), 30},
		{"window max 3m", WindowMax{Window: 3 * time.Minute}, minutes(100, 7, 30), 100},
		{"window max longer than history", WindowMax{Window: time.Hour}, []float64{1, 2}, 2},
		// pandas: pd.Series([60, 70]).ewm(span=10).mean().iloc[-1] = 65.5
		{"ewma span 10 two minutes", EWMA{Span: 10}, minutes(60, 70), 65.5},
		// pandas: pd.Series([10, 20, 30]).ewm(span=3).mean().iloc[-1] = 24.285714...
		{"ewma span 3", EWMA{Span: 3}, minutes(10, 20, 30), 42.5 / 1.75},
		{"ewma span 1 is last value", EWMA{Span: 1}, minutes(10, 20, 30), 30},
		{"ewma constant", EWMA{Span: 10}, minutes(50, 50, 50, 50), 50},
		{"headroom 10%", WithHeadroom(LastValue{}, 10), minutes(100), 110},
		{"floor lifts", WithFloor(LastValue{}, 5), minutes(0), 5},
		{"floor keeps", WithFloor(LastValue{}, 5), minutes(9), 9},
		{"cap cuts", WithCap(LastValue{}, 50), minutes(90), 50},
		// Holt's linear method on an exact line continues it.
		{"holt linear trend", &HoltWinters{Alpha: 1, Beta: 1, Season: 1440}, minutes(10, 20, 30, 40, 50), 60},
		// α = 0.5, β = 0 and a zero initial trend: levels 10, 15, 22.5 → 22.5.
		{"holt smoothing", &HoltWinters{Alpha: 0.5, Season: 1440}, minutes(10, 20, 30), 22.5},
		// A pure season of length 3 repeated 4 times: the next value is the
		// season's next entry.
		{"holt-winters season", &HoltWinters{Alpha: 0.3, Beta: 0, Gamma: 0.3, Season: 3, Block: 1}, minutes(10, 50, 30, 10, 50, 30, 10, 50, 30, 10, 50, 30), 10},
		{"paper without model is ewma ×1.1", Paper{}, minutes(60, 70), 65.5 * 1.1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.f.Forecast(tt.history)
			if err != nil {
				t.Fatalf("Forecast: %v", err)
			}
			if !near(got, tt.want) {
				t.Errorf("Forecast = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMinuteMaxima(t *testing.T) {
	h := make([]float64, 130)
	for i := range h {
		h[i] = float64(i)
	}
	got := MinuteMaxima(h, 5)
	want := []float64{9, 69, 129}
	if len(got) != len(want) {
		t.Fatalf("MinuteMaxima = %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("MinuteMaxima = %v, want %v", got, want)
		}
	}
	if got := MinuteMaxima(h, 1); len(got) != 1 || got[0] != 129 {
		t.Errorf("MinuteMaxima(k=1) = %v", got)
	}
	if got := MinuteMaximaFromStart(h); len(got) != 2 || got[0] != 59 || got[1] != 119 {
		t.Errorf("MinuteMaximaFromStart = %v, want [59 119]", got)
	}
}

func TestQuantileCalibrates(t *testing.T) {
	// Minute maxima alternate 100, 120 (ending on 120). EWMA(3) (α = 0.5)
	// settles at 113.33 after a 120 and 106.67 after a 100, so the ratios
	// actual/forecast are 100/113.33 = 0.882 and 120/106.67 = 1.125. The
	// 0.95 quantile is 1.125: forecast 113.33 × 1.125 = 127.5; the 0.05
	// quantile is 0.882: 113.33 × 0.882 = 100.
	ms := make([]float64, 200)
	for i := range ms {
		ms[i] = 100 + 20*float64(i%2)
	}
	q, err := NewQuantile(0.95, 60, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, err := q.Forecast(minutes(ms...))
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(got-127.5) > 0.1 {
		t.Errorf("quantile forecast = %v, want 127.5", got)
	}
	q5, _ := NewQuantile(0.05, 60, nil)
	low, _ := q5.Forecast(minutes(ms...))
	if math.Abs(low-100) > 0.1 {
		t.Errorf("0.05 quantile forecast = %v, want 100", low)
	}
}

func TestBadInput(t *testing.T) {
	all := []Forecaster{
		LastValue{}, WindowMax{Window: time.Minute}, EWMA{Span: 10}, NewHoltWinters(),
		&Quantile{Q: 0.9}, Paper{}, WithHeadroom(LastValue{}, 10), WithFloor(EWMA{Span: 2}, 1),
		WithCap(LastValue{}, 5), &LSTM{},
	}
	cases := []struct {
		name    string
		history []float64
		want    error
	}{
		{"nil", nil, ErrEmptyHistory},
		{"empty", []float64{}, ErrEmptyHistory},
		{"nan", append(minutes(5, 5), math.NaN()), ErrBadValue},
		{"inf", append(minutes(5, 5), math.Inf(1)), ErrBadValue},
		{"negative", append(minutes(5, 5), -1), ErrBadValue},
	}
	for _, f := range all {
		for _, c := range cases {
			t.Run(f.Name()+"/"+c.name, func(t *testing.T) {
				_, err := f.Forecast(c.history)
				if err == nil {
					t.Fatal("want an error")
				}
				if _, ok := f.(*LSTM); ok {
					return // an untrained LSTM reports ErrNotTrained first
				}
				if !errors.Is(err, c.want) {
					t.Errorf("err = %v, want %v", err, c.want)
				}
			})
		}
	}
	if _, err := NewHoltWinters().Forecast([]float64{1}); !errors.Is(err, ErrShortHistory) {
		t.Errorf("holt-winters on 1s: err = %v, want ErrShortHistory", err)
	}
	if _, err := (EWMA{Span: 0}).Forecast(minutes(1)); err == nil {
		t.Error("ewma span 0: want an error")
	}
	if _, err := WithHeadroom(LastValue{}, math.NaN()).Forecast(minutes(1)); err == nil {
		t.Error("NaN headroom: want an error")
	}
	if _, err := (WindowMax{}).Forecast(minutes(1)); err == nil {
		t.Error("zero window: want an error")
	}
}

func TestNew(t *testing.T) {
	good := map[string]string{
		"last":                    "last",
		"max":                     "max:10m0s",
		"max:5m":                  "max:5m0s",
		"ewma":                    "ewma:10",
		"ewma:3":                  "ewma:3",
		"holt-winters":            "holt-winters",
		"quantile:0.9":            "quantile:0.9(linear)",
		"quantile":                "quantile:0.95(linear)",
		"linear":                  "linear",
		"online:linear":           "online(linear)",
		"online:lstm:30":          "online(lstm)",
		"last,headroom=10":        "last,headroom=10",
		" ewma:5 , floor=1,cap=4": "ewma:5,floor=1,cap=4",
		"last,headroom=10%":       "last,headroom=10",
	}
	for spec, name := range good {
		f, err := New(spec)
		if err != nil {
			t.Errorf("New(%q): %v", spec, err)
			continue
		}
		if f.Name() != name {
			t.Errorf("New(%q).Name() = %q, want %q", spec, f.Name(), name)
		}
	}
	bad := []string{"", "nope", "last:3", "max:xyz", "max:0s", "ewma:0", "ewma:abc", "quantile:1", "quantile:0",
		"last,headroom", "last,headroom=abc", "last,headroom=-100", "last,color=3", "paper:x", "lstm:x", "last,floor=NaN",
		"linear:1", "online", "online:x", "online:linear:0", "online:linear:abc"}
	for _, spec := range bad {
		if _, err := New(spec); err == nil {
			t.Errorf("New(%q): want an error", spec)
		} else if !strings.Contains(err.Error(), "forecaster") {
			t.Errorf("New(%q): error %q should name the spec", spec, err)
		}
	}
	// "paper" always works: with the built-in model, or EWMA-only without.
	p, err := New("paper")
	if err != nil {
		t.Fatalf("New(paper): %v", err)
	}
	if _, err := p.Forecast(minutes(50, 60, 70)); err != nil {
		t.Errorf("paper on 3 minutes: %v", err)
	}
}
