package autoscaler

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/infadapter/infadapter/pkg/decider"
	"github.com/infadapter/infadapter/pkg/profile"
)

// familyAnnotationNames are the family-level knob names (without prefix).
var familyAnnotationNames = []string{"slo", "core-budget", "min-cores", "max-cores-per-replica", "max-replicas",
	"alpha", "beta", "interval", "forecaster", "stabilization", "reactive", "dry-run", "profile", "splitter-node", "cpu-mode"}

// known lists every infadapter.io/* key; anything else with our prefix is a
// typo and is reported.
var known = func() map[string]bool {
	m := map[string]bool{FamilyKey: true, VariantKey: true, AccuracyKey: true, CapacityKey: true, LoadTimeKey: true,
		PlanKey: true, DryRunPlanKey: true, StatusKey: true}
	for _, n := range familyAnnotationNames {
		m[Prefix+n] = true
	}
	return m
}()

// ParseFamilyConfig overlays the infadapter.io/* annotations of an
// InferenceGraph (where names it in errors) on defaults. Every bad or unknown
// key is reported, each error naming the key and its value.
func ParseFamilyConfig(where string, annotations map[string]string, defaults FamilyConfig) (FamilyConfig, error) {
	f := defaults
	p := &parser{where: where}
	unknownKeys(p, annotations)
	p.family(annotations, Prefix, &f)
	if len(p.errs) > 0 {
		return f, errors.Join(p.errs...)
	}
	if err := f.Validate(); err != nil {
		return f, fmt.Errorf("%s: %w", where, err)
	}
	return f, nil
}

func unknownKeys(p *parser, annotations map[string]string) {
	keys := make([]string, 0, len(annotations))
	for k := range annotations {
		if strings.HasPrefix(k, Prefix) && !known[k] {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		p.errs = append(p.errs, fmt.Errorf("%s: unknown annotation %q", p.where, k))
	}
}

// VariantSpec is what one variant's annotations declare. Accuracy and
// Capacity may be absent (0 / nil) when the family profile provides them.
type VariantSpec struct {
	Family   string
	Name     string
	Accuracy float64
	Capacity []profile.Point
	LoadTime time.Duration
}

// ParseVariantSpec reads the variant-level annotations of a PodAutoscaler
// (copied there from the InferenceService). defaultName is used when
// infadapter.io/variant is absent. A PA without infadapter.io/family gives
// Family "" and no error.
func ParseVariantSpec(where string, annotations map[string]string, defaultName string) (VariantSpec, error) {
	v := VariantSpec{Family: strings.TrimSpace(annotations[FamilyKey]), Name: defaultName}
	p := &parser{where: where}
	unknownKeys(p, annotations)
	if n, ok := annotations[VariantKey]; ok {
		n = strings.TrimSpace(n)
		if n == "" {
			p.fail(VariantKey, annotations[VariantKey], "must not be empty")
		} else {
			v.Name = n
		}
	}
	if s, ok := annotations[AccuracyKey]; ok {
		a, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(a) || a <= 0 || a > 1 {
			p.fail(AccuracyKey, s, "want a number in (0, 1]")
		} else {
			v.Accuracy = a
		}
	}
	if s, ok := annotations[CapacityKey]; ok {
		pts, err := ParseCapacity(s)
		if err != nil {
			p.fail(CapacityKey, s, err.Error())
		} else {
			v.Capacity = pts
		}
	}
	p.duration(annotations, LoadTimeKey, &v.LoadTime, 0)
	return v, errors.Join(p.errs...)
}

// ParseCapacity parses "cores:rps,cores:rps" with strictly ascending cores.
func ParseCapacity(s string) ([]profile.Point, error) {
	var pts []profile.Point
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		c, r, ok := strings.Cut(part, ":")
		if !ok {
			return nil, fmt.Errorf("point %q: want cores:rps", part)
		}
		cores, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || cores < 1 || cores > 1024 {
			return nil, fmt.Errorf("point %q: cores must be a whole number in [1, 1024]", part)
		}
		rps, err := strconv.ParseFloat(strings.TrimSpace(r), 64)
		if err != nil || math.IsNaN(rps) || math.IsInf(rps, 0) || rps < 0 {
			return nil, fmt.Errorf("point %q: rps must be a finite number >= 0", part)
		}
		if len(pts) > 0 && cores <= pts[len(pts)-1].Cores {
			return nil, fmt.Errorf("point %q: cores must be strictly ascending", part)
		}
		pts = append(pts, profile.Point{Cores: cores, RPS: rps})
	}
	if len(pts) == 0 {
		return nil, errors.New("no points; want e.g. 2:9,4:21")
	}
	return pts, nil
}

// BuildProfile assembles the family's profile from the variants'
// annotations, falling back per variant to base (from the profile
// ConfigMap, may be nil). Variants are sorted by name so the result is
// deterministic. Errors name the variant and the missing key.
func BuildProfile(family string, cfg FamilyConfig, specs []VariantSpec, base *profile.Profile) (profile.Profile, error) {
	p := profile.Profile{Name: family, SLOMillis: float64(cfg.SLO) / float64(time.Millisecond), Source: "annotations"}
	if base != nil {
		p.Rule, p.Coefficient, p.Source, p.FitCores = base.Rule, base.Coefficient, base.Source, base.FitCores
	}
	var errs []error
	sorted := append([]VariantSpec(nil), specs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	for _, s := range sorted {
		v := profile.Variant{Name: s.Name, Accuracy: s.Accuracy, Capacity: s.Capacity, LoadTimeSeconds: s.LoadTime.Seconds()}
		if base != nil {
			for _, bv := range base.Variants {
				if bv.Name != s.Name {
					continue
				}
				if v.Accuracy == 0 {
					v.Accuracy = bv.Accuracy
				}
				if v.Capacity == nil {
					v.Capacity = bv.Capacity
				}
				if v.LoadTimeSeconds == 0 {
					v.LoadTimeSeconds = bv.LoadTimeSeconds
				}
				v.Memory, v.AccuracySource = bv.Memory, bv.AccuracySource
			}
		}
		if v.Accuracy == 0 {
			errs = append(errs, fmt.Errorf("variant %q: no accuracy (annotation %s or the profile ConfigMap)", s.Name, AccuracyKey))
		}
		if len(v.Capacity) == 0 {
			errs = append(errs, fmt.Errorf("variant %q: no capacity (annotation %s or the profile ConfigMap)", s.Name, CapacityKey))
		}
		p.Variants = append(p.Variants, v)
	}
	if len(p.Variants) == 0 {
		errs = append(errs, fmt.Errorf("family %q has no variants", family))
	}
	if len(errs) == 0 {
		if err := p.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	return p, errors.Join(errs...)
}

// StoredPlan is the plan being applied, kept on the InferenceGraph
// (annotation infadapter.io/plan) so that a restarted controller continues
// where the previous one stopped.
type StoredPlan struct {
	// DecidedAt is when the plan was decided (RFC 3339, the controller's clock).
	DecidedAt time.Time `json:"decidedAt"`
	Policy    string    `json:"policy"`
	Forecast  float64   `json:"forecast"`
	Feasible  bool      `json:"feasible"`
	Accuracy  float64   `json:"accuracy"`
	Hold      bool      `json:"hold,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	// Variants lists every variant of the family, off ones with zeros, by name.
	Variants []PlannedVariant `json:"variants"`
}

// PlannedVariant is the target of one variant.
type PlannedVariant struct {
	Name     string `json:"name"`
	Cores    int    `json:"cores"`    // per replica, 0 = off
	Replicas int    `json:"replicas"` // 0 = off
	Percent  int    `json:"percent"`  // splitter weight, integer percent
}

// Cores is the plan's total cores (cores per replica × replicas).
func (s StoredPlan) Cores() int {
	n := 0
	for _, v := range s.Variants {
		n += v.Cores * v.Replicas
	}
	return n
}

// Get returns the planned variant called name (zero value if absent).
func (s StoredPlan) Get(name string) PlannedVariant {
	for _, v := range s.Variants {
		if v.Name == name {
			return v
		}
	}
	return PlannedVariant{Name: name}
}

// NewStoredPlan turns a decider plan into integer weights over all
// variants (sorted by name), so the stored form is what gets applied.
func NewStoredPlan(now time.Time, policy string, p decider.Plan, variants []string) StoredPlan {
	names := append([]string(nil), variants...)
	sort.Strings(names)
	shares := make([]float64, len(names))
	byName := map[string]decider.VariantState{}
	for _, v := range p.Variants {
		byName[v.Name] = v
	}
	for i, n := range names {
		if v, ok := byName[n]; ok && v.Cores > 0 {
			shares[i] = v.Share
		}
	}
	pct := Percents(shares)
	s := StoredPlan{DecidedAt: now.UTC().Truncate(time.Second), Policy: policy, Forecast: p.Forecast, Feasible: p.Feasible,
		Accuracy: p.Accuracy, Hold: p.Hold, Reason: p.Reason}
	for i, n := range names {
		v := byName[n]
		pv := PlannedVariant{Name: n, Percent: pct[i]}
		if v.Cores > 0 {
			pv.Cores, pv.Replicas = v.Cores, max(v.Replicas, 1)
		}
		s.Variants = append(s.Variants, pv)
	}
	return s
}

// Percents rounds shares to integer percents summing to exactly 100 by the
// largest-remainder method (ties to the lower index). All-zero or empty
// input gives all zeros. Negative or NaN shares count as 0.
//
// Example: [0.333, 0.333, 0.334] → raw [33.3, 33.3, 33.4] → floors
// [33, 33, 33], one point left, largest remainder 0.4 → [33, 33, 34].
func Percents(shares []float64) []int {
	out := make([]int, len(shares))
	sum := 0.0
	for _, s := range shares {
		if s > 0 && !math.IsInf(s, 0) {
			sum += s
		}
	}
	if sum <= 0 {
		return out
	}
	type rem struct {
		i int
		r float64
	}
	rems := make([]rem, 0, len(shares))
	total := 0
	for i, s := range shares {
		if !(s > 0) || math.IsInf(s, 0) {
			continue
		}
		raw := 100 * s / sum
		out[i] = int(math.Floor(raw))
		total += out[i]
		rems = append(rems, rem{i, raw - math.Floor(raw)})
	}
	sort.SliceStable(rems, func(a, b int) bool { return rems[a].r > rems[b].r })
	for k := 0; total < 100 && len(rems) > 0; k++ {
		out[rems[k%len(rems)].i]++
		total++
	}
	return out
}
