package profiler

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/infadapter/infadapter/pkg/backend/local"
	"github.com/infadapter/infadapter/pkg/profile"
)

// Starter starts local variant servers (implemented by *local.Backend).
type Starter interface {
	Apply(ctx context.Context, desired []local.Instance) ([]local.Status, error)
}

var _ Starter = (*local.Backend)(nil)

// LocalVariant is a variant to profile on this machine.
type LocalVariant struct {
	Name  string
	Model string // .onnx path
	// Accuracy and AccuracySource are copied into the profile.
	Accuracy       float64
	AccuracySource string
}

// Point is the measurement of one variant at one core count.
type Point struct {
	Variant string  `json:"variant"`
	Cores   int     `json:"cores"`
	Result  Result  `json:"result"`
	Seconds float64 `json:"seconds"`
	// RaisedToMonotone is set when the measured capacity was below the
	// previous core count's and the profile records that one instead.
	RaisedToMonotone bool `json:"raisedToMonotone,omitempty"`
}

// ProfileLocal starts each variant alone at each core count through be,
// measures its capacity and returns the profile (named name) plus every
// point's details. LoadTimeSeconds is the start-to-ready time at the first
// core count; Memory the server's resident set after its probes.
func (p *Profiler) ProfileLocal(ctx context.Context, be Starter, name string, variants []LocalVariant, cores []int) (profile.Profile, []Point, error) {
	prof := profile.Profile{Name: name, SLOMillis: float64(p.cfg.SLO) / 1e6, Rule: profile.RuleInterpolate,
		Source: fmt.Sprintf("measured by `infadapter profile` on this machine: Poisson load, P99 over %v windows ≤ SLO, %d repeats, %v probes", p.cfg.Window, p.cfg.Repeats, p.cfg.ProbeDuration)}
	var points []Point
	if len(variants) == 0 || len(cores) == 0 {
		return prof, nil, errors.New("nothing to profile: no variants or no core counts")
	}
	for _, v := range variants {
		pv := profile.Variant{Name: v.Name, Accuracy: v.Accuracy, AccuracySource: v.AccuracySource}
		for i, c := range cores {
			t0 := time.Now()
			sts, err := be.Apply(ctx, []local.Instance{{Name: v.Name, Model: v.Model, MilliCores: c * 1000}})
			if err != nil {
				return prof, points, fmt.Errorf("starting %s on %d cores: %w", v.Name, c, err)
			}
			if i == 0 {
				pv.LoadTimeSeconds = round3(time.Since(t0).Seconds())
			}
			st := sts[0]
			label := fmt.Sprintf("%s@%dc", v.Name, c)
			res, err := p.Capacity(ctx, Target{URL: st.URL, Model: v.Name}, label)
			if err != nil {
				return prof, points, fmt.Errorf("profiling %s: %w", label, err)
			}
			pt := Point{Variant: v.Name, Cores: c, Result: res, Seconds: time.Since(t0).Seconds()}
			rps := round1(res.Capacity)
			if n := len(pv.Capacity); n > 0 && rps < pv.Capacity[n-1].RPS {
				// Profiles must not lose capacity with more cores; a lower
				// measurement at more cores is noise (or client-bound), so
				// keep the smaller count's figure and say so.
				rps, pt.RaisedToMonotone = pv.Capacity[n-1].RPS, true
			}
			points = append(points, pt)
			pv.Capacity = append(pv.Capacity, profile.Point{Cores: c, RPS: rps})
			if rss, err := residentMiB(st.PID); err == nil {
				pv.Memory = fmt.Sprintf("%dMi", rss)
			}
		}
		prof.Variants = append(prof.Variants, pv)
	}
	return prof, points, nil
}

// ProfileEndpoint measures one OIP v2 endpoint, recording it under the
// given core count.
func (p *Profiler) ProfileEndpoint(ctx context.Context, t Target, variant string, cores int) (profile.Point, Point, error) {
	t0 := time.Now()
	res, err := p.Capacity(ctx, t, fmt.Sprintf("%s@%dc", variant, cores))
	if err != nil {
		return profile.Point{}, Point{}, err
	}
	return profile.Point{Cores: cores, RPS: round1(res.Capacity)}, Point{Variant: variant, Cores: cores, Result: res, Seconds: time.Since(t0).Seconds()}, nil
}

func round1(x float64) float64 { return float64(int64(x*10+0.5)) / 10 }
func round3(x float64) float64 { return float64(int64(x*1000+0.5)) / 1000 }

// residentMiB reads VmHWM (peak resident set) of pid in MiB.
func residentMiB(pid int) (int, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, err := strconv.Atoi(f[1])
			if err != nil {
				return 0, err
			}
			return (kb + 1023) / 1024, nil
		}
	}
	return 0, errors.New("no VmHWM")
}

// FamilyFile is the profile file name inside a model family directory.
const FamilyFile = "profile.yaml"

// LoadFamily reads a model family directory: its variants are the .onnx
// files; when DIR/profile.yaml exists, it gives their order, accuracy and
// accuracy source (variants it does not list are appended by file name).
// That file may lack capacities (profile.ParseFamily): `make
// resnet-models` writes one with published accuracies only.
func LoadFamily(dir string) (*profile.Profile, []LocalVariant, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.onnx"))
	if err != nil {
		return nil, nil, err
	}
	if len(files) == 0 {
		return nil, nil, fmt.Errorf("model family %s: no .onnx files", dir)
	}
	byName := map[string]string{}
	for _, f := range files {
		byName[strings.TrimSuffix(filepath.Base(f), ".onnx")] = f
	}
	var base *profile.Profile
	var out []LocalVariant
	if b, err := os.ReadFile(filepath.Join(dir, FamilyFile)); err == nil {
		// A family's file may predate its measurement (an exported family
		// lists names and accuracies only), so capacity is optional here.
		p, err := profile.ParseFamily(b, filepath.Join(dir, FamilyFile))
		if err != nil {
			return nil, nil, err
		}
		base = &p
		for _, v := range base.Variants {
			f, ok := byName[v.Name]
			if !ok {
				return nil, nil, fmt.Errorf("%s lists variant %q but %s.onnx is missing", filepath.Join(dir, FamilyFile), v.Name, v.Name)
			}
			out = append(out, LocalVariant{Name: v.Name, Model: f, Accuracy: v.Accuracy, AccuracySource: v.AccuracySource})
			delete(byName, v.Name)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, nil, err
	}
	rest := make([]string, 0, len(byName))
	for n := range byName {
		rest = append(rest, n)
	}
	sort.Strings(rest)
	for _, n := range rest {
		out = append(out, LocalVariant{Name: n, Model: byName[n]})
	}
	return base, out, nil
}

// ReadProfile parses and validates a profile file (pkg/profile.Parse).
func ReadProfile(b []byte, file string) (*profile.Profile, error) {
	p, err := profile.Parse(b, file)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

// MarshalProfile renders a profile as YAML.
func MarshalProfile(p profile.Profile) ([]byte, error) { return yaml.Marshal(p) }
