package profiler

import (
	"context"
	"fmt"

	"github.com/infadapter/infadapter/pkg/dataset/fashionmnist"
	"github.com/infadapter/infadapter/pkg/modelserver"
)

// MeasureAccuracy runs the model at path over every example of set through
// ONNX Runtime and returns the top-1 accuracy in [0,1].
func MeasureAccuracy(ctx context.Context, path string, set *fashionmnist.Set) (float64, error) {
	m, err := modelserver.LoadModel(modelserver.ModelConfig{Path: path, Workers: 1})
	if err != nil {
		return 0, err
	}
	defer m.Close()
	if m.InputSize() != fashionmnist.Pixels || m.OutputSize() != fashionmnist.Classes {
		return 0, fmt.Errorf("model %s: input %v / output %v do not fit Fashion-MNIST", path, m.InputShape(), m.OutputShape())
	}
	if set.Len() == 0 {
		return 0, fmt.Errorf("empty data set")
	}
	correct := 0
	var out []float32
	for i := 0; i < set.Len(); i++ {
		out, err = m.Infer(ctx, set.Float32(i), out[:0])
		if err != nil {
			return 0, err
		}
		best := 0
		for j, x := range out {
			if x > out[best] {
				best = j
			}
		}
		if best == int(set.Labels[i]) {
			correct++
		}
	}
	return float64(correct) / float64(set.Len()), nil
}
