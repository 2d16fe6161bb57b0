package profile

import (
	"strings"
	"testing"
)

func TestAccuracyLabel(t *testing.T) {
	for _, tc := range []struct {
		src, label, format string
	}{
		{"published", "published, not measured", "76.13 % (published, not measured)"},
		{"measured", "measured", "76.13 % (measured)"},
		{"", "", "76.13 %"},
	} {
		v := Variant{Name: "v", Accuracy: 0.7613, AccuracySource: tc.src}
		if got := v.AccuracyLabel(); got != tc.label {
			t.Errorf("source %q: label %q, want %q", tc.src, got, tc.label)
		}
		if got := v.FormatAccuracy(); got != tc.format {
			t.Errorf("source %q: format %q, want %q", tc.src, got, tc.format)
		}
	}
}

func TestAnyAllPublished(t *testing.T) {
	pub := Variant{AccuracySource: "published"}
	meas := Variant{AccuracySource: "measured"}
	for _, tc := range []struct {
		name     string
		vs       []Variant
		any, all bool
	}{
		{"none", nil, false, false},
		{"all published", []Variant{pub, pub}, true, true},
		{"mixed", []Variant{pub, meas}, true, false},
		{"measured", []Variant{meas}, false, false},
		{"unspecified", []Variant{{}}, false, false},
	} {
		p := Profile{Variants: tc.vs}
		if p.AnyPublished() != tc.any || p.AllPublished() != tc.all {
			t.Errorf("%s: any %v all %v, want %v %v", tc.name, p.AnyPublished(), p.AllPublished(), tc.any, tc.all)
		}
	}
}

// The file `make resnet-models` writes: accuracies, no capacities.
const familyYAML = `name: resnet
sloMillis: 750
capacityRule: interpolate
variants:
- name: resnet18
  accuracy: 0.69758
  accuracySource: published
  loadTimeSeconds: 0
- name: resnet152
  accuracy: 0.78312
  accuracySource: published
  loadTimeSeconds: 0
  capacity: []
`

func TestParseFamily(t *testing.T) {
	if _, err := Parse([]byte(familyYAML), "f.yaml"); err == nil || !strings.Contains(err.Error(), "variants[0].capacity") {
		t.Fatalf("Parse must still require capacities, got %v", err)
	}
	p, err := ParseFamily([]byte(familyYAML), "f.yaml")
	if err != nil {
		t.Fatalf("ParseFamily: %v", err)
	}
	if len(p.Variants) != 2 || p.Variants[1].Name != "resnet152" || p.Variants[1].Accuracy != 0.78312 || !p.AllPublished() {
		t.Fatalf("parsed %+v", p)
	}
	// Everything else is still checked, capacity points that are present too.
	for _, tc := range []struct{ name, yaml, want string }{
		{"bad source", strings.Replace(familyYAML, "accuracySource: published\n  loadTimeSeconds: 0\n- name: resnet152", "accuracySource: guessed\n  loadTimeSeconds: 0\n- name: resnet152", 1), `variants[0].accuracySource: must be "measured" or "published"`},
		{"accuracy > 1", strings.Replace(familyYAML, "0.69758", "69.758", 1), "variants[0].accuracy: must be in [0, 1]"},
		{"bad point", strings.Replace(familyYAML, "capacity: []", "capacity: [{cores: 0, rps: 1}]", 1), "variants[1].capacity[0].cores"},
		{"no variants", "name: r\nsloMillis: 750\nvariants: []\n", "at least one variant"},
	} {
		_, err := ParseFamily([]byte(tc.yaml), "f.yaml")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

// FuzzParseFamily: never panics; a family file it accepts passes Validate
// once every variant has a capacity point.
func FuzzParseFamily(f *testing.F) {
	f.Add([]byte(familyYAML))
	f.Add([]byte("name: r\nsloMillis: 1\nvariants:\n- {name: a, accuracy: 0.5, loadTimeSeconds: 0}\n"))
	f.Add([]byte("name: r\nsloMillis: 1\nvariants: [{name: a, accuracy: 2}]\n"))
	f.Add([]byte(""))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParseFamily(b, "f.yaml")
		if err != nil {
			return
		}
		for i := range p.Variants {
			if len(p.Variants[i].Capacity) == 0 {
				p.Variants[i].Capacity = []Point{{Cores: 1, RPS: 1}}
			}
		}
		if p.Rule == RulePaperLinear {
			return // needs two points per variant; not what a family file carries
		}
		if err := p.Validate(); err != nil {
			t.Fatalf("ParseFamily accepted a profile that does not validate with capacities added: %v\n%s", err, b)
		}
	})
}
