package loadgen

import (
	"encoding/json"
	"fmt"

	"github.com/infadapter/infadapter/pkg/dataset/fashionmnist"
	"github.com/infadapter/infadapter/pkg/oip"
)

// Protocol selects the wire format.
type Protocol string

// Supported protocols.
const (
	ProtocolV2 Protocol = "v2" // OIP v2: POST /v2/models/{m}/infer
	ProtocolTF Protocol = "tf" // TF Serving REST: POST /v1/models/{m}:predict
)

// ParseProtocol parses "v2" or "tf".
func ParseProtocol(s string) (Protocol, error) {
	switch Protocol(s) {
	case ProtocolV2, ProtocolTF:
		return Protocol(s), nil
	}
	return "", fmt.Errorf("unknown protocol %q (want v2 or tf)", s)
}

// Path is the request path for model under p.
func (p Protocol) Path(model string) string {
	if p == ProtocolTF {
		return oip.PredictPath(model)
	}
	return oip.InferPath(model)
}

// Sample is one prepared request body and its label (-1: unlabelled).
type Sample struct {
	Body  []byte
	Label int
}

// Source hands out request bodies; request i gets Sample(i % Len()).
type Source interface {
	Len() int
	Sample(i int) Sample
}

// Samples is a Source over pre-encoded samples.
type Samples []Sample

// Len implements Source.
func (s Samples) Len() int { return len(s) }

// Sample implements Source.
func (s Samples) Sample(i int) Sample { return s[i%len(s)] }

// Encode builds the body of a one-example request of input (flat values,
// shape without the batch axis) under protocol p. OIP v2 uses input name
// "input" and shape [1, shape...]; TF Serving uses one instance.
func Encode(p Protocol, shape []int64, input []float32) ([]byte, error) {
	if p == ProtocolTF {
		t := oip.NewFP32("x", append([]int64{1}, shape...), input)
		return json.Marshal(oip.PredictRequest{Instances: json.RawMessage("[" + string(t.Data) + "]")})
	}
	return json.Marshal(oip.InferRequest{Inputs: []oip.Tensor{oip.NewFP32("input", append([]int64{1}, shape...), input)}})
}

// FashionMNIST encodes the first n examples of set (all when n <= 0) as
// labelled [1,1,28,28] FP32 requests with pixels/255.
func FashionMNIST(p Protocol, set *fashionmnist.Set, n int) (Samples, error) {
	if n <= 0 || n > set.Len() {
		n = set.Len()
	}
	if n == 0 {
		return nil, fmt.Errorf("fashion-mnist set is empty")
	}
	out := make(Samples, n)
	for i := range out {
		b, err := Encode(p, []int64{1, fashionmnist.Rows, fashionmnist.Cols}, set.Float32(i))
		if err != nil {
			return nil, err
		}
		out[i] = Sample{Body: b, Label: int(set.Labels[i])}
	}
	return out, nil
}

// Zeros is a single unlabelled request of a zero tensor of shape (without
// the batch axis), for benchmarks against trivial backends.
func Zeros(p Protocol, shape []int64) (Samples, error) {
	n, err := oip.Elements(shape)
	if err != nil {
		return nil, fmt.Errorf("zeros shape: %w", err)
	}
	b, err := Encode(p, shape, make([]float32, n))
	if err != nil {
		return nil, err
	}
	return Samples{{Body: b, Label: -1}}, nil
}
