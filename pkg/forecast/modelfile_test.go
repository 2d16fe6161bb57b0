package forecast

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"
)

func smallLSTM(t *testing.T) *LSTM {
	t.Helper()
	cfg := DefaultTrainConfig()
	cfg.Epochs = 2
	cfg.Units = 5
	m, err := TrainLSTM(periodic(200, 3), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestLSTMSaveLoadRoundTrip(t *testing.T) {
	m := smallLSTM(t)
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), `"format": "infadapter-lstm/v1"`) {
		t.Fatalf("saved file lacks the format field:\n%.200s", buf.String())
	}
	got, err := LoadLSTM(bytes.NewReader(buf.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Wh, m.Wh) || !slices.Equal(got.Wx, m.Wx) || !slices.Equal(got.B, m.B) ||
		!slices.Equal(got.Wd, m.Wd) || got.Bd != m.Bd || got.Scaler != m.Scaler || got.Trained != m.Trained {
		t.Error("loaded model differs from the saved one")
	}
	h := minutes(periodic(30, 4)...)
	a, _ := m.Forecast(h)
	b, _ := got.Forecast(h)
	if a != b {
		t.Errorf("forecast %v after load, %v before", b, a)
	}
	any, err := LoadModel(bytes.NewReader(buf.Bytes()))
	if err != nil || any.Name() != "lstm" {
		t.Errorf("LoadModel: %v, %v", any, err)
	}
}

func TestLinearSaveLoadRoundTrip(t *testing.T) {
	l := &Linear{Minutes: 2, Weights: []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}}
	var buf bytes.Buffer
	if err := l.Save(&buf); err != nil {
		t.Fatal(err)
	}
	got, err := LoadLinear(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got.Weights, l.Weights) || got.Minutes != 2 {
		t.Errorf("round trip: %+v", got)
	}
}

func TestLoadBadModels(t *testing.T) {
	m := smallLSTM(t)
	var buf bytes.Buffer
	if err := m.Save(&buf); err != nil {
		t.Fatal(err)
	}
	good := buf.String()
	cases := []struct {
		name, doc, want string
	}{
		{"empty", "", "not a JSON object"},
		{"not json", "hello", "not a JSON object"},
		{"no format", `{"units": 3}`, `no "format"`},
		{"future version", strings.Replace(good, "infadapter-lstm/v1", "infadapter-lstm/v2", 1), "not supported by this build"},
		{"other kind", strings.Replace(good, "infadapter-lstm/v1", "keras", 1), `format "keras"`},
		{"truncated", good[:len(good)/2], "JSON"},
		{"wrong units", strings.Replace(good, `"units": 5`, `"units": 6`, 1), "shapes"},
		{"nan weight", strings.Replace(good, `"denseBias": `, `"denseBias": "NaN", "x": `, 1), "denseBias"},
		{"unknown field", strings.Replace(good, `"units": 5`, `"units": 5, "color": 1`, 1), "unknown field"},
		{"bad scaler", strings.Replace(good, `"min": `, `"min": 1e300, "oldmin": `, 1), ""},
		{"activation", strings.Replace(good, `"activation": "relu"`, `"activation": "tanh"`, 1), "activation"},
		{"trailing", good + "{}", "JSON"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadLSTM(strings.NewReader(c.doc))
			if err == nil {
				t.Fatal("want an error")
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q should mention %q", err, c.want)
			}
		})
	}
	if _, err := LoadLinear(strings.NewReader(good)); err == nil || !strings.Contains(err.Error(), "infadapter-linear/v1") {
		t.Errorf("LoadLinear on an LSTM file: %v", err)
	}
	if _, err := LoadModel(strings.NewReader(`{"format":"infadapter-linear/v9"}`)); err == nil || !strings.Contains(err.Error(), "not supported") {
		t.Errorf("LoadModel future linear: %v", err)
	}
}

// FuzzLoadModel: no input may panic the loader, and anything it accepts
// must forecast without panicking.
func FuzzLoadModel(f *testing.F) {
	f.Add([]byte(`{"format":"infadapter-lstm/v1"}`))
	f.Add([]byte(`{"format":"infadapter-linear/v1","minutes":1,"tau":0,"features":[],"weights":[1,2,3,4,5,6,7],"trained":{"samples":0,"epochs":0,"batchSize":0,"seed":0,"finalLoss":0}}`))
	f.Add([]byte(`{"format":"infadapter-lstm/v1","units":1,"lookbackMinutes":1,"activation":"relu","gateOrder":"ifco","scaler":{"min":0,"max":1},"weights":{"inputKernel":[1,1,1,1],"recurrentKernel":[1,1,1,1],"bias":[0,1,0,0],"denseKernel":[1],"denseBias":0},"trained":{"samples":0,"epochs":0,"batchSize":0,"seed":0,"finalLoss":0}}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := LoadModel(bytes.NewReader(b))
		if err != nil {
			if m != nil {
				t.Error("model and error")
			}
			return
		}
		_, err = m.Forecast(minutes(10, 20, 30, 40, 50, 60, 70, 80, 90, 100, 110))
		if err != nil && !errors.Is(err, ErrShortHistory) {
			t.Errorf("accepted model fails to forecast: %v", err)
		}
	})
}
