package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"

	"github.com/infadapter/infadapter/pkg/oip"
)

// Random makes n distinct unlabelled requests of seeded random images of
// shape (without the batch axis; e.g. 3,224,224), for model families that
// come without a labelled data set (the random-weight ResNet family):
// latency and capacity are real, served accuracy is not measured. Values
// are uniform in [0,1] in steps of 1/100 — pixel/255-like inputs that keep
// the JSON body short (≈5 bytes a value: 0.75 MB for 3×224×224).
func Random(p Protocol, shape []int64, n int, seed uint64) (Samples, error) {
	size, err := oip.Elements(shape)
	if err != nil {
		return nil, fmt.Errorf("random input shape %v: %w", shape, err)
	}
	if size < 1 {
		return nil, fmt.Errorf("random input shape %v: no elements", shape)
	}
	if n < 1 {
		return nil, fmt.Errorf("random inputs: want at least 1 image, got %d", n)
	}
	rng := rand.New(rand.NewPCG(seed, 0x72616e64)) // "rand"
	out := make(Samples, n)
	buf := make([]float32, size)
	for i := range out {
		for k := range buf {
			buf[k] = float32(rng.IntN(101)) / 100
		}
		b, err := Encode(p, shape, buf)
		if err != nil {
			return nil, err
		}
		out[i] = Sample{Body: b, Label: -1}
	}
	return out, nil
}

// InputShape asks an OIP v2 endpoint for model's metadata
// (GET {base}/v2/models/{model}) and returns the shape of its first input
// without the batch axis (the leading dimension when it is -1 or 1).
func InputShape(ctx context.Context, client *http.Client, base, model string) ([]int64, error) {
	if client == nil {
		client = http.DefaultClient
	}
	url := strings.TrimRight(base, "/") + "/v2/models/" + model
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("model metadata: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("model metadata %s: %w", url, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("model metadata %s: HTTP %d", url, resp.StatusCode)
	}
	return ParseInputShape(b)
}

// ParseInputShape extracts the first input's shape, without the batch
// axis, from an OIP v2 model metadata body.
func ParseInputShape(body []byte) ([]int64, error) {
	var md oip.ModelMetadata
	if err := json.Unmarshal(body, &md); err != nil {
		return nil, fmt.Errorf("model metadata: %w", err)
	}
	if len(md.Inputs) == 0 {
		return nil, fmt.Errorf("model metadata: no inputs")
	}
	s := md.Inputs[0].Shape
	if len(s) >= 2 && (s[0] == -1 || s[0] == 1) {
		s = s[1:]
	}
	if len(s) == 0 {
		return nil, fmt.Errorf("model metadata: input %q has no shape", md.Inputs[0].Name)
	}
	for _, d := range s {
		if d < 1 {
			return nil, fmt.Errorf("model metadata: input %q has a dynamic dimension besides the batch: %v", md.Inputs[0].Name, md.Inputs[0].Shape)
		}
	}
	return s, nil
}
