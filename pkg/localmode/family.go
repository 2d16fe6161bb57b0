package localmode

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/infadapter/infadapter/pkg/loadgen"
	"github.com/infadapter/infadapter/pkg/modelserver"
	"github.com/infadapter/infadapter/pkg/profile"
	"github.com/infadapter/infadapter/pkg/profiler"
)

// randomImages is how many distinct random images a run of an unlabelled
// family cycles through (each 3×224×224 body is ≈0.75 MB).
const randomImages = 16

// publishedWarmUp is the warm-up inferences per worker of a server of a
// published-accuracy family (see runner.warmUp).
const publishedWarmUp = 3

// NotMeasuredNote is what the summary and the dashboard say about served
// accuracy when the family has no labelled data set.
const NotMeasuredNote = "served accuracy not measured: random inputs, no labels; planned and routed accuracy are " + profile.PublishedLabel

// PublishedFamily reads dir/profile.yaml and returns it when every variant's
// accuracy is published (accuracySource: published) — a family without a
// labelled data set, such as the random-weight ResNets of `make
// resnet-models` — and nil otherwise (the Fashion-MNIST family, or no file).
// Run then uses the published accuracies instead of measuring them, sends
// seeded random images of the models' input shape, and reports served
// accuracy as not measured.
func PublishedFamily(dir string) (*profile.Profile, error) {
	file := filepath.Join(resolveModelsDir(dir), profiler.FamilyFile)
	b, err := os.ReadFile(file)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	p, err := profile.ParseFamily(b, file)
	if err != nil {
		return nil, err
	}
	if !p.AllPublished() {
		return nil, nil
	}
	return &p, nil
}

// checkPublished makes sure every model file has a published accuracy.
func checkPublished(fam *profile.Profile, models map[string]string) error {
	for n := range models {
		if !slices.ContainsFunc(fam.Variants, func(v profile.Variant) bool { return v.Name == n }) {
			return fmt.Errorf("%s.onnx has no entry in the family's %s (accuracies are published there)", n, profiler.FamilyFile)
		}
	}
	return nil
}

// randomSamples makes seeded random images of the input shape of the
// family's models (read from one model's ONNX graph; all must agree).
func randomSamples(fam *profile.Profile, models map[string]string, seed uint64) (loadgen.Samples, error) {
	first := ""
	for _, v := range fam.Variants {
		if _, ok := models[v.Name]; ok {
			first = models[v.Name]
			break
		}
	}
	if first == "" {
		return nil, fmt.Errorf("no model of the family %q found", fam.Name)
	}
	m, err := modelserver.LoadModel(modelserver.ModelConfig{Path: first, Workers: 1})
	if err != nil {
		return nil, err
	}
	shape := m.InputShape()
	m.Close()
	if len(shape) < 2 {
		return nil, fmt.Errorf("model %s: input shape %v has no batch axis", first, shape)
	}
	return loadgen.Random(loadgen.ProtocolV2, shape[1:], randomImages, seed)
}
