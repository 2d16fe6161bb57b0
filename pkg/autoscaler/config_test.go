package autoscaler

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/infadapter/infadapter/pkg/profile"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// TestShippedConfigMapEqualsDefaults keeps config/config-infadapter.yaml and
// DefaultConfig in step.
func TestShippedConfigMapEqualsDefaults(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "config-infadapter.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cm corev1.ConfigMap
	if err := yaml.Unmarshal(b, &cm); err != nil {
		t.Fatal(err)
	}
	got, err := NewConfigFromMap(cm.Data)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(DefaultConfig(), *got); d != "" {
		t.Fatalf("shipped ConfigMap differs from DefaultConfig (-default +shipped):\n%s", d)
	}
}

func TestNewConfigFromMap(t *testing.T) {
	tests := []struct {
		name    string
		data    map[string]string
		want    func(*Config)
		wantErr []string // substrings, each must appear
	}{
		{name: "empty gives defaults", data: nil, want: func(*Config) {}},
		{name: "overrides", data: map[string]string{"slo": "500ms", "core-budget": "12", "interval": "10s",
			"forecaster": "last,headroom=10", "dry-run": "true", "metrics-source": "prometheus", "prometheus-url": "http://p:9090", "cpu-mode": " revision "},
			want: func(c *Config) {
				c.Family.CPUMode = CPURevision
				c.Family.SLO, c.Family.CoreBudget, c.Family.Interval = 500*time.Millisecond, 12, 10*time.Second
				c.Family.Forecaster, c.Family.DryRun = "last,headroom=10", true
				c.MetricsSource, c.PrometheusURL = MetricsPrometheus, "http://p:9090"
			}},
		{name: "every bad key named", data: map[string]string{"slo": "fast", "core-budget": "-1", "alpha": "NaN",
			"dry-run": "maybe", "forecaster": "crystal-ball", "metrics-source": "tea", "colour": "red", "cpu-mode": "restart"},
			wantErr: []string{`slo: "fast"`, `core-budget: "-1"`, `alpha: "NaN"`, `dry-run: "maybe"`, `forecaster: "crystal-ball"`,
				`metrics-source: "tea"`, `unknown key "colour"`, `cpu-mode: "restart": want resize, revision or auto`}},
		{name: "cross-field", data: map[string]string{"core-budget": "2", "min-cores": "4"},
			wantErr: []string{"min-cores 4 exceeds core-budget 2"}},
		{name: "prometheus needs url", data: map[string]string{"metrics-source": "prometheus"},
			wantErr: []string{"needs prometheus-url"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NewConfigFromMap(tc.data)
			if len(tc.wantErr) > 0 {
				if err == nil {
					t.Fatalf("want error, got %+v", got)
				}
				for _, s := range tc.wantErr {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error lacks %q:\n%v", s, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := DefaultConfig()
			tc.want(&want)
			if d := cmp.Diff(want, *got); d != "" {
				t.Fatalf("(-want +got):\n%s", d)
			}
		})
	}
}

func TestParseFamilyConfig(t *testing.T) {
	def := DefaultFamilyConfig()
	got, err := ParseFamilyConfig("InferenceGraph ns/g", map[string]string{
		CoreBudgetKey: "8", MinCoresKey: "1", MaxReplicasKey: "3", IntervalKey: "5s", CPUModeKey: "resize", "other.io/x": "ignored"}, def)
	if err != nil {
		t.Fatal(err)
	}
	if got.CPUMode != CPUResize {
		t.Fatalf("cpu-mode %q, want resize", got.CPUMode)
	}
	if _, err := ParseFamilyConfig("InferenceGraph ns/g", map[string]string{CPUModeKey: "Revision"}, def); err == nil ||
		!strings.Contains(err.Error(), `InferenceGraph ns/g: infadapter.io/cpu-mode: "Revision": want resize, revision or auto`) {
		t.Fatalf("bad cpu-mode: %v", err)
	}
	if got.CoreBudget != 8 || got.MinCores != 1 || got.MaxReplicas != 3 || got.Interval != 5*time.Second || got.Alpha != def.Alpha {
		t.Fatalf("got %+v", got)
	}
	_, err = ParseFamilyConfig("InferenceGraph ns/g", map[string]string{CoreBudgetKey: "lots", "infadapter.io/budget": "8"}, def)
	if err == nil || !strings.Contains(err.Error(), `InferenceGraph ns/g: infadapter.io/core-budget: "lots"`) ||
		!strings.Contains(err.Error(), `unknown annotation "infadapter.io/budget"`) {
		t.Fatalf("want errors naming both keys, got %v", err)
	}
}

func TestParseVariantSpec(t *testing.T) {
	v, err := ParseVariantSpec("PA ns/r", map[string]string{FamilyKey: "resnet", VariantKey: "r50",
		AccuracyKey: "0.7613", CapacityKey: "2:9, 4:21", LoadTimeKey: "6.8s"}, "isvc")
	if err != nil {
		t.Fatal(err)
	}
	if v.Family != "resnet" || v.Name != "r50" || v.Accuracy != 0.7613 || len(v.Capacity) != 2 || v.Capacity[1].RPS != 21 || v.LoadTime != 6800*time.Millisecond {
		t.Fatalf("got %+v", v)
	}
	v, err = ParseVariantSpec("PA ns/r", map[string]string{}, "isvc")
	if err != nil || v.Name != "isvc" || v.Family != "" {
		t.Fatalf("defaults: %+v %v", v, err)
	}
	for _, tc := range []struct{ key, val string }{
		{AccuracyKey, "1.5"}, {AccuracyKey, "high"}, {CapacityKey, "4:10,2:5"}, {CapacityKey, "2-9"},
		{CapacityKey, ""}, {LoadTimeKey, "slow"}, {VariantKey, " "}, {CapacityKey, "0:3"}, {CapacityKey, "2:-1"},
	} {
		_, err := ParseVariantSpec("PA ns/r", map[string]string{tc.key: tc.val}, "x")
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%s=%q: want an error naming the key, got %v", tc.key, tc.val, err)
		}
	}
}

// FuzzParseAnnotations: no panic, and every error names our prefix.
func FuzzParseAnnotations(f *testing.F) {
	f.Add("resnet", "0.76", "2:9,4:21", "6s", "20", "30s", "1")
	f.Add("", "1e309", "2:NaN", "-1s", "0x10", "0", "NaN")
	f.Add("x", "", ",,:,", "9999999h", "-5", "1ns", "0.2")
	f.Fuzz(func(t *testing.T, fam, acc, capa, lt, budget, interval, reactive string) {
		_, err := ParseVariantSpec("PA", map[string]string{FamilyKey: fam, AccuracyKey: acc, CapacityKey: capa, LoadTimeKey: lt}, "v")
		if err != nil && !strings.Contains(err.Error(), Prefix) {
			t.Fatalf("error without key: %v", err)
		}
		fc, err := ParseFamilyConfig("G", map[string]string{CoreBudgetKey: budget, IntervalKey: interval, ReactiveKey: reactive}, DefaultFamilyConfig())
		if err != nil && !strings.Contains(err.Error(), Prefix) {
			t.Fatalf("error without key: %v", err)
		}
		if err == nil && (fc.CoreBudget < 1 || fc.Interval < time.Second || fc.ReactiveTrigger().Validate() != nil) {
			t.Fatalf("accepted invalid config %+v", fc)
		}
	})
}

func TestPercents(t *testing.T) {
	tests := []struct {
		in   []float64
		want []int
	}{
		{nil, []int{}},
		{[]float64{0, 0}, []int{0, 0}},
		{[]float64{1}, []int{100}},
		{[]float64{0.333, 0.333, 0.334}, []int{33, 33, 34}},
		{[]float64{1, 1, 1}, []int{34, 33, 33}},
		{[]float64{0.5, 0, 0.5}, []int{50, 0, 50}},
		{[]float64{0.996, 0.004}, []int{100, 0}},
		{[]float64{0.994, 0.006}, []int{99, 1}},
		{[]float64{-1, 0.2, 0.2}, []int{0, 50, 50}},
	}
	for _, tc := range tests {
		got := Percents(tc.in)
		if d := cmp.Diff(tc.want, got); d != "" {
			t.Errorf("Percents(%v) (-want +got):\n%s", tc.in, d)
		}
		sum := 0
		for _, p := range got {
			sum += p
		}
		if len(got) > 0 && sum != 0 && sum != 100 {
			t.Errorf("Percents(%v) sums to %d", tc.in, sum)
		}
	}
}

// TestSampleFamilyParses checks config/samples/resnet-family.yaml the way
// the controller reads it: profile ConfigMap, graph annotations, variants.
func TestSampleFamilyParses(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "config", "samples", "resnet-family.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var base *profile.Profile
	var fc FamilyConfig
	var specs []VariantSpec
	graphs := 0
	for _, doc := range strings.Split(string(b), "\n---\n") {
		var obj struct {
			Kind     string
			Metadata struct {
				Name        string
				Annotations map[string]string
			}
			Data map[string]string
		}
		if err := yaml.Unmarshal([]byte(doc), &obj); err != nil {
			t.Fatal(err)
		}
		switch obj.Kind {
		case "ConfigMap":
			p, err := profile.Parse([]byte(obj.Data["profile.yaml"]), "sample")
			if err != nil {
				t.Fatal(err)
			}
			base = &p
		case "InferenceGraph":
			graphs++
			if fc, err = ParseFamilyConfig("sample graph", obj.Metadata.Annotations, DefaultFamilyConfig()); err != nil {
				t.Fatal(err)
			}
		case "InferenceService":
			if obj.Metadata.Annotations["autoscaling.knative.dev/class"] != Class {
				t.Errorf("%s: class %q", obj.Metadata.Name, obj.Metadata.Annotations["autoscaling.knative.dev/class"])
			}
			s, err := ParseVariantSpec("sample "+obj.Metadata.Name, obj.Metadata.Annotations, obj.Metadata.Name)
			if err != nil {
				t.Fatal(err)
			}
			specs = append(specs, s)
		}
	}
	if graphs != 1 || len(specs) < 3 || base == nil {
		t.Fatalf("graphs %d variants %d profile %v; want 1, ≥3, a profile", graphs, len(specs), base != nil)
	}
	p, err := BuildProfile("resnet", fc, specs, base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewInfAdapterDecider(fc, p); err != nil {
		t.Fatal(err)
	}
}
