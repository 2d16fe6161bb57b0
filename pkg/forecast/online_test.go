package forecast

import (
	"errors"
	"testing"
	"time"
)

// countingTrainer records the history length of every Train call.
type countingTrainer struct {
	calls []int
	fail  bool
}

func (c *countingTrainer) Name() string { return "count" }
func (c *countingTrainer) Train(h []float64, _ Forecaster) (Forecaster, error) {
	c.calls = append(c.calls, len(h))
	if c.fail {
		return nil, errors.New("boom")
	}
	return WithFloor(LastValue{}, 1000), nil // recognisable output
}

func TestOnlineSchedule(t *testing.T) {
	tr := &countingTrainer{}
	o, err := NewOnline(tr, OnlineConfig{RetrainEvery: 30, MinTrainMinutes: 60, MaxTrainMinutes: 90})
	if err != nil {
		t.Fatal(err)
	}
	h := minutes(periodic(300, 1)...)
	var usedModel []int
	for m := 1; m <= 300; m++ { // one call per minute of history
		v, err := o.Forecast(h[:m*60])
		if err != nil {
			t.Fatal(err)
		}
		if v == 1000 {
			usedModel = append(usedModel, m)
		}
	}
	// Trainings at minutes 60, 90, ..., 300: 9 calls; each sees at most 90
	// minutes (MaxTrainMinutes).
	want := []int{3600, 5400, 5400, 5400, 5400, 5400, 5400, 5400, 5400}
	if len(tr.calls) != len(want) {
		t.Fatalf("train calls %v, want %v", tr.calls, want)
	}
	for i := range want {
		if tr.calls[i] != want[i] {
			t.Fatalf("train calls %v, want %v", tr.calls, want)
		}
	}
	if usedModel[0] != 60 || len(usedModel) != 241 {
		t.Errorf("model used from minute %d for %d minutes, want from 60 for 241", usedModel[0], len(usedModel))
	}
	if s := o.Status(); s.Trainings != 9 || s.TrainedAtSecs != 300*60 {
		t.Errorf("status %+v", s)
	}
}

func TestOnlineFallbackAndFailure(t *testing.T) {
	tr := &countingTrainer{fail: true}
	o, _ := NewOnline(tr, OnlineConfig{RetrainEvery: 10, MinTrainMinutes: 10})
	h := minutes(60, 70)
	v, err := o.Forecast(h)
	if err != nil || !near(v, 65.5) { // EWMA span 10, see TestForecasters
		t.Fatalf("fallback = %v, %v; want 65.5", v, err)
	}
	long := minutes(periodic(25, 2)...)
	if _, err := o.Forecast(long); err != nil {
		t.Fatal(err)
	}
	if s := o.Status(); s.LastError != "boom" || s.Trainings != 0 {
		t.Errorf("status after failed training %+v", s)
	}
	if _, err := o.Forecast(nil); !errors.Is(err, ErrEmptyHistory) {
		t.Errorf("empty: %v", err)
	}
	if _, err := NewOnline(tr, OnlineConfig{RetrainEvery: -1, MinTrainMinutes: -2}); err == nil {
		t.Error("bad config: want an error")
	}
}

// TestOnlineLinearDeterministic runs the real linear trainer twice over the
// same history; forecasts must match exactly.
func TestOnlineLinearDeterministic(t *testing.T) {
	h := minutes(periodic(400, 7)...)
	run := func() []float64 {
		o, err := New("online:linear:30")
		if err != nil {
			t.Fatal(err)
		}
		var out []float64
		for m := 100; m <= 400; m += 7 {
			v, err := o.Forecast(h[:m*60])
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, v)
		}
		return out
	}
	a, b := run(), run()
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("run differs at %d: %v vs %v", i, a[i], b[i])
		}
	}
}

// TestOnlineForecastAtWindow: fed 600-second windows every 30 s through
// ForecastAt (as the live loop does), Online must train on its own record
// and give exactly what Forecast gives with the whole history.
func TestOnlineForecastAtWindow(t *testing.T) {
	h := minutes(periodic(400, 8)...)
	cfg := OnlineConfig{RetrainEvery: 45, MinTrainMinutes: 100, MaxTrainMinutes: 300}
	whole, _ := NewOnline(LinearTrainer{}, cfg)
	windowed, _ := NewOnline(LinearTrainer{}, cfg)
	decorated := WithHeadroom(mustOnline(t, cfg), 10)
	t0 := time.Date(2026, 11, 27, 0, 0, 0, 0, time.UTC)
	for end := 600; end <= len(h); end += 30 {
		now := t0.Add(time.Duration(end) * time.Second)
		a, err := whole.Forecast(h[:end])
		if err != nil {
			t.Fatal(err)
		}
		b, err := windowed.ForecastAt(now, h[end-600:end])
		if err != nil {
			t.Fatal(err)
		}
		c, err := ForecastAt(decorated, now, h[end-600:end])
		if err != nil {
			t.Fatal(err)
		}
		if a != b || !near(c, 1.1*a) {
			t.Fatalf("at %d s: whole-history %v, windowed %v, decorated %v", end, a, b, c)
		}
	}
	if s := windowed.Status(); s.Trainings == 0 || s.Trainings != whole.Status().Trainings {
		t.Errorf("trainings: windowed %d, whole %d", s.Trainings, whole.Status().Trainings)
	}
	if _, err := windowed.ForecastAt(t0, h[:600]); err == nil {
		t.Error("now going backwards: want an error")
	}
}

func mustOnline(t *testing.T, cfg OnlineConfig) *Online {
	t.Helper()
	o, err := NewOnline(LinearTrainer{}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return o
}
