package modelserver

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/infadapter/infadapter/pkg/oip"
)

// fastV2 decodes an OIP v2 request with one numeric input in two passes
// (json.Unmarshal keeps the data raw; parseFloats reads it) instead of the
// three that oip.DecodeInferRequest + Float32s take: for small models the
// JSON work is most of a request's CPU. Any failure returns ok = false and
// the caller falls back to the oip package for its canonical error.
func fastV2(body []byte) (req *oip.InferRequest, in []float32, ok bool) {
	var r oip.InferRequest
	if err := json.Unmarshal(body, &r); err != nil || len(r.Inputs) != 1 {
		return nil, nil, false
	}
	t := &r.Inputs[0]
	if t.Name == "" || !oip.IsNumeric(t.Datatype) {
		return nil, nil, false
	}
	n, err := oip.Elements(t.Shape)
	if err != nil {
		return nil, nil, false
	}
	in, err = parseFloats(t.Data, make([]float32, 0, n))
	if err != nil || int64(len(in)) != n {
		return nil, nil, false
	}
	for _, o := range r.Outputs {
		if o.Name == "" {
			return nil, nil, false
		}
	}
	return &r, in, true
}

var errNotNumbers = errors.New("not an array of numbers")

// parseFloats reads a JSON array of numbers, nested to any depth, into
// out. The input is known to be valid JSON (json.Unmarshal checked it).
func parseFloats(b []byte, out []float32) ([]float32, error) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 || b[0] != '[' {
		return nil, errNotNumbers
	}
	i := 0
	for i < len(b) {
		c := b[i]
		switch {
		case c == '[' || c == ']' || c == ',' || c == ' ' || c == '\n' || c == '\t' || c == '\r':
			i++
		case c == '-' || c >= '0' && c <= '9':
			j := i + 1
			for j < len(b) && (b[j] >= '0' && b[j] <= '9' || b[j] == '.' || b[j] == 'e' || b[j] == 'E' || b[j] == '+' || b[j] == '-') {
				j++
			}
			f, err := strconv.ParseFloat(string(b[i:j]), 64)
			if err != nil {
				return nil, err
			}
			out = append(out, float32(f))
			i = j
		default:
			return nil, errNotNumbers // strings, booleans, null, objects
		}
	}
	return out, nil
}
