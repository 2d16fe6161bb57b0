package localmode

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"time"

	"github.com/infadapter/infadapter/pkg/backend/local"
	"github.com/infadapter/infadapter/pkg/dataset/fashionmnist"
	"github.com/infadapter/infadapter/pkg/loop"
	"github.com/infadapter/infadapter/pkg/modelserver"
	"github.com/infadapter/infadapter/pkg/profile"
	"github.com/infadapter/infadapter/pkg/profiler"
)

// profileModel is the dispatcher's logical model used while profiling.
const profileModel = "fmnist-profiling"

// profileKey identifies a measured profile: the model files' hashes, the
// core grid, the SLO and the machine. Any change means re-profiling.
func (r *runner) profileKey(models map[string]string) (string, error) {
	h := sha256.New()
	names := sortedNames(models)
	for _, n := range names {
		f, err := os.Open(models[n])
		if err != nil {
			return "", err
		}
		fh := sha256.New()
		_, err = io.Copy(fh, f)
		f.Close()
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s=%x\n", n, fh.Sum(nil))
	}
	fmt.Fprintf(h, "unit=%d min=%d units=%d slo=%v cpus=%d cpu=%s mode=%s v=6\n", r.cfg.CoreUnitMilli, r.cfg.MinUnits, r.cfg.Units(), r.cfg.SLO,
		runtime.NumCPU(), cpuModel(), r.backend.Enforcement().Mode)
	return hex.EncodeToString(h.Sum(nil))[:16], nil
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, "model name") {
			if _, v, ok := strings.Cut(l, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

func sortedNames(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// loadProfile returns the profile the run plans with, in core units: the
// --profile file, else a cached measurement, else a fresh (short)
// measurement saved in the cache. The second result says which.
func (r *runner) loadProfile(ctx context.Context, models map[string]string) (profile.Profile, string, error) {
	if r.cfg.Profile != "" {
		b, err := os.ReadFile(r.cfg.Profile)
		if err != nil {
			return profile.Profile{}, "", fmt.Errorf("profile: %w", err)
		}
		var p profile.Profile
		if err := json.Unmarshal(b, &p); err != nil {
			return profile.Profile{}, "", fmt.Errorf("profile %s: %w", r.cfg.Profile, err)
		}
		if err := checkProfile(p, models); err != nil {
			return profile.Profile{}, "", fmt.Errorf("profile %s: %w", r.cfg.Profile, err)
		}
		return p, "file " + r.cfg.Profile, nil
	}
	key, err := r.profileKey(models)
	if err != nil {
		return profile.Profile{}, "", fmt.Errorf("hashing models: %w", err)
	}
	path := filepath.Join(r.cfg.CacheDir, "profiles", "local-"+key+".json")
	if !r.cfg.Reprofile {
		if b, err := os.ReadFile(path); err == nil {
			var p profile.Profile
			if err := json.Unmarshal(b, &p); err == nil && checkProfile(p, models) == nil {
				r.info("profile: reusing %s", path)
				return p, "cached " + path, nil
			}
		}
	}
	r.info("profile: measuring %d variants at %d and %d core units of %d m (cached afterwards in %s)",
		len(models), r.cfg.MinUnits, r.cfg.Units(), r.cfg.CoreUnitMilli, path)
	p, err := r.measure(ctx, models)
	if err != nil {
		return profile.Profile{}, "", err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err == nil {
		b, _ := json.MarshalIndent(p, "", "  ")
		_ = os.WriteFile(path, append(b, '\n'), 0o644)
	}
	return p, "measured → " + path, nil
}

func checkProfile(p profile.Profile, models map[string]string) error {
	have := map[string]bool{}
	for _, v := range p.Variants {
		have[v.Name] = true
		if len(v.Capacity) == 0 {
			return fmt.Errorf("variant %q has no capacity points", v.Name)
		}
	}
	for n := range models {
		if !have[n] {
			return fmt.Errorf("no profile for variant %q", n)
		}
	}
	return nil
}

// measure profiles each variant: accuracy over the 10k test images
// in-process through ONNX Runtime, load time (start → ready), and capacity
// with pkg/profiler at 1 unit and at the full budget (short probes: a demo
// must not spend long here; `infadapter profile` does the thorough job).
func (r *runner) measure(ctx context.Context, models map[string]string) (profile.Profile, error) {
	var set *fashionmnist.Set
	var body []byte // the profiler's default (zero 28×28 image) unless published
	published := map[string]profile.Variant{}
	if r.published != nil {
		// No labelled data: the family file's published accuracies, and
		// requests of the models' own input shape.
		for _, v := range r.published.Variants {
			published[v.Name] = v
		}
		body = r.samples[0].Body
	} else {
		var err error
		if set, err = fashionmnist.Load(r.cfg.DatasetDir, fashionmnist.Test, 0); err != nil {
			return profile.Profile{}, err
		}
	}
	pcfg := profiler.Default()
	pcfg.SLO = r.cfg.SLO
	pcfg.ProbeDuration = 3 * time.Second // 2 s probes missed slow queue build-up near saturation
	pcfg.PeakDuration = 2 * time.Second
	pcfg.Repeats = 1
	pcfg.Steps = 3
	pcfg.MaxRPS = r.cfg.MaxRPS * 1.5
	pr, err := profiler.New(pcfg, func(msg string) { r.info("  %s", msg) })
	if err != nil {
		return profile.Profile{}, err
	}
	name := ModelName
	if r.published != nil {
		name = r.published.Name
	}
	p := profile.Profile{Name: name, SLOMillis: float64(r.cfg.SLO) / float64(time.Millisecond),
		Rule: profile.RuleInterpolate, Coefficient: 0.8, // the paper's CAPACITY_COEF
		Source: fmt.Sprintf("infadapter run: measured on this machine (%s, %d CPUs); core unit %d millicores", cpuModel(), runtime.NumCPU(), r.cfg.CoreUnitMilli)}
	grid := []int{r.cfg.MinUnits}
	if u := r.cfg.Units(); u > r.cfg.MinUnits {
		grid = append(grid, u)
	}
	for _, name := range sortedNames(models) {
		var v profile.Variant
		if pv, ok := published[name]; ok {
			v = profile.Variant{Name: name, Accuracy: pv.Accuracy, AccuracySource: profile.SourcePublished}
		} else {
			acc, err := testAccuracy(models[name], set)
			if err != nil {
				return profile.Profile{}, fmt.Errorf("variant %s accuracy: %w", name, err)
			}
			v = profile.Variant{Name: name, Accuracy: acc, AccuracySource: profile.SourceMeasured}
		}
		for _, u := range grid {
			t0 := time.Now()
			st, err := r.backend.Apply(ctx, []local.Instance{{Name: name, Model: models[name], MilliCores: u * r.cfg.CoreUnitMilli}})
			if err != nil {
				return profile.Profile{}, fmt.Errorf("starting %s on %d units: %w", name, u, err)
			}
			if v.LoadTimeSeconds == 0 {
				v.LoadTimeSeconds = time.Since(t0).Seconds()
			}
			// Measured through the dispatcher, which shares the machine
			// in the real run too: its CPU is part of the cost.
			// A separate logical model keeps the profiling traffic out of
			// the served model's arrival history (the forecaster's input).
			if err := r.disp.Model(profileModel).SetRoutes(ctx, []loop.Route{{Variant: name, URL: st[0].URL, Weight: 1}}); err != nil {
				return profile.Profile{}, fmt.Errorf("routing to %s: %w", name, err)
			}
			res, err := pr.Capacity(ctx, profiler.Target{URL: r.dispURL, Model: profileModel, Body: body}, fmt.Sprintf("%s @ %d m", name, u*r.cfg.CoreUnitMilli))
			if err != nil {
				return profile.Profile{}, fmt.Errorf("profiling %s: %w", name, err)
			}
			c := res.Capacity
			if n := len(v.Capacity); n > 0 && c < v.Capacity[n-1].RPS {
				// More CPU never serves less; a lower figure is noise
				// from the shared machine.
				r.info("  %s: %.0f rps at %d units < %.0f at fewer units (noise); keeping the lower point's value", name, c, u, v.Capacity[n-1].RPS)
				c = v.Capacity[n-1].RPS
			}
			v.Capacity = append(v.Capacity, profile.Point{Cores: u, RPS: math.Round(c)})
		}
		r.info("  %s: accuracy %s, capacity %v", name, v.FormatAccuracy(), v.Capacity)
		p.Variants = append(p.Variants, v)
	}
	if err := r.disp.RemoveModel(profileModel); err != nil {
		r.log.Warn("removing the profiling model", "err", err)
	}
	return p, nil
}

// testAccuracy runs the model over the whole test set in-process.
func testAccuracy(path string, set *fashionmnist.Set) (float64, error) {
	m, err := modelserver.LoadModel(modelserver.ModelConfig{Path: path, Workers: 1})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	correct := 0
	var out []float32
	for i := 0; i < set.Len(); i++ {
		out, err = m.Infer(context.Background(), set.Float32(i), out[:0])
		if err != nil {
			return 0, err
		}
		best := 0
		for k := range out {
			if out[k] > out[best] {
				best = k
			}
		}
		if best == int(set.Labels[i]) {
			correct++
		}
	}
	return float64(correct) / float64(set.Len()), nil
}
