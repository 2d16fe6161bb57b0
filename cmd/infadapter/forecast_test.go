package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestSplitSpecs(t *testing.T) {
	got := splitSpecs(" last, ewma:3,headroom=10 ,floor=1,, quantile:0.9")
	want := []string{"last", "ewma:3,headroom=10,floor=1", "quantile:0.9"}
	if !slices.Equal(got, want) {
		t.Errorf("splitSpecs = %q, want %q", got, want)
	}
}

// writeTrace writes a synthetic per-second trace of the given minutes: a
// daily-ish sine with deterministic jitter, and some zero-seconds (which
// eval drops).
func writeTrace(t *testing.T, mins int) string {
	t.Helper()
	var b strings.Builder
	for i := range mins * 60 {
		v := 60 + 30*math.Sin(2*math.Pi*float64(i)/(60*300)) + float64((i*7919)%13)
		if i%97 == 0 {
			v = 0
		}
		fmt.Fprintf(&b, "%d ", int(v))
	}
	p := filepath.Join(t.TempDir(), "trace.txt")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func runForecast(t *testing.T, args ...string) (string, error) {
	t.Helper()
	c := newForecastCmd()
	var out bytes.Buffer
	c.SetOut(&out)
	c.SetErr(&out)
	c.SetArgs(args)
	err := c.Execute()
	return out.String(), err
}

func TestForecastTrainEvalCLI(t *testing.T) {
	tr := writeTrace(t, 1440+400)
	dir := t.TempDir()
	out, err := runForecast(t, "train", "--trace", tr, "--train-days", "1", "--epochs", "1", "--out-dir", dir, "--json")
	if err != nil {
		t.Fatalf("train: %v\n%s", err, out)
	}
	for _, f := range []string{"lstm-twitter.json", "linear-twitter.json"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("train did not write %s: %v", f, err)
		}
	}
	out, err = runForecast(t, "eval", "--trace", tr, "--train-days", "1", "--json",
		"--lstm", filepath.Join(dir, "lstm-twitter.json"), "--linear", filepath.Join(dir, "linear-twitter.json"),
		"--forecasters", "last,lstm,linear,headroom=5")
	if err != nil {
		t.Fatalf("eval: %v\n%s", err, out)
	}
	var res struct {
		TestMinutes int `json:"testMinutes"`
		Results     []struct {
			Spec    string  `json:"spec"`
			Minutes int     `json:"minutes"`
			MAPE    float64 `json:"mapePct"`
		} `json:"results"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatalf("eval --json output: %v\n%s", err, out)
	}
	if len(res.Results) != 3 || res.Results[2].Spec != "linear,headroom=5" || res.Results[0].Minutes < 300 {
		t.Errorf("eval results: %+v", res)
	}
	for _, r := range res.Results {
		if !(r.MAPE > 0 && r.MAPE < 100) {
			t.Errorf("%s: MAPE %v", r.Spec, r.MAPE)
		}
	}
	out, err = runForecast(t, "predict", "--forecaster", "last", tr)
	if err != nil || strings.TrimSpace(out) == "" {
		t.Errorf("predict: %v %q", err, out)
	}
}

func TestForecastBadInputCLI(t *testing.T) {
	tr := writeTrace(t, 100)
	bad := filepath.Join(t.TempDir(), "bad.json")
	os.WriteFile(bad, []byte(`{"format":"infadapter-lstm/v7"}`), 0o644)
	for _, args := range [][]string{
		{"eval", "--trace", filepath.Join(t.TempDir(), "missing")},
		{"eval", "--trace", tr}, // 100 minutes < 14 days
		{"eval", "--trace", tr, "--train-days", "0"},
		{"train", "--trace", tr, "--epochs", "0"},
		{"predict", "--forecaster", "nope", tr},
		{"predict", "--forecaster", "lstm", "--lstm", bad, tr},
	} {
		_, err := runForecast(t, args...)
		if !errors.Is(err, errBadInput) {
			t.Errorf("%q: err = %v, want a bad-input error", args, err)
		}
	}
}
