package oip

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
)

// DefaultMaxBodyBytes bounds request bodies when callers pass 0: 8 MiB is
// ~100 Fashion-MNIST images as JSON, or one 224×224×3 FP32 image with room.
const DefaultMaxBodyBytes int64 = 8 << 20

// maxElements bounds a tensor's element count (shape product) so a tiny body
// cannot ask for a huge allocation.
const maxElements = 1 << 28

// RequestError is an error caused by the request; Status is the HTTP status
// to answer with (4xx).
type RequestError struct {
	Status int
	Msg    string
}

func (e *RequestError) Error() string { return e.Msg }

func badRequest(format string, args ...any) error {
	return &RequestError{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

// StatusOf returns the HTTP status for err: a RequestError's own status,
// 500 for anything else, 200 for nil.
func StatusOf(err error) int {
	if err == nil {
		return http.StatusOK
	}
	var re *RequestError
	if errors.As(err, &re) {
		return re.Status
	}
	return http.StatusInternalServerError
}

// ErrBodyTooLarge is wrapped by ReadBody's error when the body exceeds the limit.
var ErrBodyTooLarge = errors.New("request body too large")

// ReadBody reads all of r, failing with a 413 RequestError (wrapping
// ErrBodyTooLarge) once more than maxBytes arrive; maxBytes <= 0 means
// DefaultMaxBodyBytes.
func ReadBody(r io.Reader, maxBytes int64) ([]byte, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBodyBytes
	}
	b, err := io.ReadAll(io.LimitReader(r, maxBytes+1))
	if err != nil {
		return nil, badRequest("reading body: %v", err)
	}
	if int64(len(b)) > maxBytes {
		return nil, &tooLarge{RequestError{Status: http.StatusRequestEntityTooLarge,
			Msg: fmt.Sprintf("request body larger than the limit of %d bytes", maxBytes)}}
	}
	return b, nil
}

type tooLarge struct{ RequestError }

func (e *tooLarge) Unwrap() []error { return []error{&e.RequestError, ErrBodyTooLarge} }

// decodeStrict decodes one JSON value into v, rejecting trailing data.
func decodeStrict(what string, b []byte, v any) error {
	if len(bytes.TrimSpace(b)) == 0 {
		return badRequest("%s: empty body", what)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(v); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.As(err, &se):
			return badRequest("%s: malformed JSON at byte %d: %v", what, se.Offset, err)
		case errors.As(err, &te):
			return badRequest("%s: field %q: want %s, got JSON %s", what, te.Field, te.Type, te.Value)
		case errors.Is(err, io.ErrUnexpectedEOF):
			return badRequest("%s: malformed JSON: unexpected end of body", what)
		default:
			return badRequest("%s: %v", what, err)
		}
	}
	if dec.More() {
		return badRequest("%s: trailing data after the JSON object", what)
	}
	return nil
}

// DecodeInferRequest parses and validates an OIP v2 inference request body
// (already size-limited, e.g. by ReadBody).
func DecodeInferRequest(b []byte) (*InferRequest, error) {
	var req InferRequest
	if err := decodeStrict("infer request", b, &req); err != nil {
		return nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, err
	}
	return &req, nil
}

// Validate checks the request's structure: at least one input, every input
// with a unique non-empty name, a known datatype, a shape with non-negative
// dims, and data whose element count equals the shape's product.
func (r *InferRequest) Validate() error {
	if len(r.Inputs) == 0 {
		return badRequest("infer request: no inputs")
	}
	seen := map[string]bool{}
	for i := range r.Inputs {
		t := &r.Inputs[i]
		where := fmt.Sprintf("infer request: inputs[%d]", i)
		if t.Name == "" {
			return badRequest("%s: empty name", where)
		}
		if seen[t.Name] {
			return badRequest("%s: duplicate name %q", where, t.Name)
		}
		seen[t.Name] = true
		if err := t.validate(where); err != nil {
			return err
		}
	}
	for i, o := range r.Outputs {
		if o.Name == "" {
			return badRequest("infer request: outputs[%d]: empty name", i)
		}
	}
	return nil
}

func (t *Tensor) validate(where string) error {
	if !datatypes[t.Datatype] {
		return badRequest("%s (%q): unknown datatype %q", where, t.Name, t.Datatype)
	}
	n, err := Elements(t.Shape)
	if err != nil {
		return badRequest("%s (%q): %v", where, t.Name, err)
	}
	if len(t.Data) == 0 {
		return badRequest("%s (%q): missing data", where, t.Name)
	}
	var got int
	switch {
	case t.Datatype == DTBytes:
		s, err := t.Strings()
		if err != nil {
			return badRequest("%s (%q): %v", where, t.Name, err)
		}
		got = len(s)
	case t.Datatype == DTBool:
		v, err := flatten[bool](t.Data)
		if err != nil {
			return badRequest("%s (%q): data: %v", where, t.Name, err)
		}
		got = len(v)
	default:
		v, err := t.Float64s()
		if err != nil {
			return badRequest("%s (%q): %v", where, t.Name, err)
		}
		got = len(v)
	}
	if int64(got) != n {
		return badRequest("%s (%q): data has %d elements, shape %v needs %d", where, t.Name, got, t.Shape, n)
	}
	return nil
}

// Elements is the product of shape's dims; it fails on a negative dim or
// a product above 2^28.
func Elements(shape []int64) (int64, error) {
	if len(shape) == 0 {
		return 0, errors.New("empty shape")
	}
	n := int64(1)
	for i, d := range shape {
		if d < 0 {
			return 0, fmt.Errorf("shape[%d] = %d is negative", i, d)
		}
		if d != 0 && n > maxElements/d {
			return 0, fmt.Errorf("shape %v has more than %d elements", shape, maxElements)
		}
		n *= d
	}
	return n, nil
}

// Float64s returns the tensor's numeric data flattened in row-major order.
func (t *Tensor) Float64s() ([]float64, error) {
	v, err := flatten[float64](t.Data)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return v, nil
}

// Float32s returns the tensor's numeric data flattened, as float32.
func (t *Tensor) Float32s() ([]float32, error) {
	v, err := t.Float64s()
	if err != nil {
		return nil, err
	}
	out := make([]float32, len(v))
	for i, x := range v {
		out[i] = float32(x)
	}
	return out, nil
}

// Strings returns a BYTES tensor's data flattened.
func (t *Tensor) Strings() ([]string, error) {
	v, err := flatten[string](t.Data)
	if err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	return v, nil
}

// flatten decodes a JSON array of T, flat or nested to any depth (≤ 32),
// into a flat slice. The flat case takes the fast path of json.Unmarshal.
func flatten[T float64 | string | bool](raw json.RawMessage) ([]T, error) {
	var flat []T
	if err := json.Unmarshal(raw, &flat); err == nil {
		return flat, nil
	}
	var anyv any
	if err := json.Unmarshal(raw, &anyv); err != nil {
		return nil, fmt.Errorf("not valid JSON: %v", err)
	}
	if _, ok := anyv.([]any); !ok {
		return nil, fmt.Errorf("want an array, got %s", jsonKind(anyv))
	}
	var out []T
	var walk func(v any, depth int) error
	walk = func(v any, depth int) error {
		if depth > 32 {
			return errors.New("arrays nested deeper than 32")
		}
		switch x := v.(type) {
		case []any:
			for _, e := range x {
				if err := walk(e, depth+1); err != nil {
					return err
				}
			}
			return nil
		case T:
			out = append(out, x)
			return nil
		default:
			var zero T
			return fmt.Errorf("element is %s, want %s", jsonKind(v), jsonKind(zero))
		}
	}
	if err := walk(anyv, 0); err != nil {
		return nil, err
	}
	return out, nil
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case float64:
		return "a number"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

// NewFP32 builds an FP32 tensor with flat data. It panics only if
// len(data) != product(shape), a programming error.
func NewFP32(name string, shape []int64, data []float32) Tensor {
	n, err := Elements(shape)
	if err != nil || n != int64(len(data)) {
		panic(fmt.Sprintf("oip.NewFP32(%q): %d values for shape %v", name, len(data), shape))
	}
	return Tensor{Name: name, Shape: shape, Datatype: DTFP32, Data: appendFloats(nil, data)}
}

// NewINT64 builds an INT64 tensor with flat data (same contract as NewFP32).
func NewINT64(name string, shape []int64, data []int64) Tensor {
	n, err := Elements(shape)
	if err != nil || n != int64(len(data)) {
		panic(fmt.Sprintf("oip.NewINT64(%q): %d values for shape %v", name, len(data), shape))
	}
	b, _ := json.Marshal(data)
	return Tensor{Name: name, Shape: shape, Datatype: DTInt64, Data: b}
}

// appendFloats writes data as a JSON array; NaN and ±Inf, which JSON
// cannot carry, become 0.
func appendFloats(b []byte, data []float32) []byte {
	b = append(b, '[')
	for i, x := range data {
		if i > 0 {
			b = append(b, ',')
		}
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			f = 0
		}
		b = appendFloat32(b, f)
	}
	return append(b, ']')
}

// DecodeInferResponse parses an OIP v2 inference response body.
func DecodeInferResponse(b []byte) (*InferResponse, error) {
	var resp InferResponse
	if err := decodeStrict("infer response", b, &resp); err != nil {
		return nil, err
	}
	if len(resp.Outputs) == 0 {
		return nil, badRequest("infer response: no outputs")
	}
	return &resp, nil
}

// DecodePredictRequest parses a TF Serving predict request body: exactly
// one of "instances" and "inputs" must be present.
func DecodePredictRequest(b []byte) (*PredictRequest, error) {
	var req PredictRequest
	if err := decodeStrict("predict request", b, &req); err != nil {
		return nil, err
	}
	hasI, hasC := len(req.Instances) > 0 && string(req.Instances) != "null", len(req.Inputs) > 0 && string(req.Inputs) != "null"
	switch {
	case hasI && hasC:
		return nil, badRequest("predict request: both \"instances\" and \"inputs\" given; use one")
	case !hasI && !hasC:
		return nil, badRequest("predict request: neither \"instances\" nor \"inputs\" given")
	}
	return &req, nil
}

// Rows returns the request's examples, each flattened to float32: for
// "instances" one row per list entry; for "inputs" the single input's
// batch (an array, or an object with exactly one named input).
func (r *PredictRequest) Rows() ([][]float32, error) {
	raw := r.Instances
	where := "instances"
	if len(raw) == 0 || string(raw) == "null" {
		raw, where = r.Inputs, "inputs"
		var named map[string]json.RawMessage
		if json.Unmarshal(raw, &named) == nil {
			if len(named) != 1 {
				return nil, badRequest("predict request: \"inputs\" names %d inputs; only single-input models are supported", len(named))
			}
			for k, v := range named {
				raw, where = v, "inputs."+k
			}
		}
	}
	var rows []json.RawMessage
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, badRequest("predict request: %s: want an array of examples: %v", where, err)
	}
	if len(rows) == 0 {
		return nil, badRequest("predict request: %s: no examples", where)
	}
	out := make([][]float32, len(rows))
	for i, row := range rows {
		v, err := flatten[float64](row)
		if err != nil {
			// A scalar example ("instances": [1.0, 2.0]) is one value.
			var x float64
			if json.Unmarshal(row, &x) != nil {
				return nil, badRequest("predict request: %s[%d]: %v", where, i, err)
			}
			v = []float64{x}
		}
		if i > 0 && len(v) != len(out[0]) {
			return nil, badRequest("predict request: %s[%d] has %d values, %s[0] has %d", where, i, len(v), where, len(out[0]))
		}
		out[i] = make([]float32, len(v))
		for j, x := range v {
			out[i][j] = float32(x)
		}
	}
	return out, nil
}

// DecodePredictResponse parses a TF Serving predict response body.
func DecodePredictResponse(b []byte) (*PredictResponse, error) {
	var resp PredictResponse
	if err := decodeStrict("predict response", b, &resp); err != nil {
		return nil, err
	}
	if len(resp.Predictions) == 0 && len(resp.Outputs) == 0 {
		return nil, badRequest("predict response: neither \"predictions\" nor \"outputs\" given")
	}
	return &resp, nil
}

// PredictionRows returns the response's predictions (or outputs), one
// flattened row per example.
func (r *PredictResponse) PredictionRows() ([][]float64, error) {
	raw := r.Predictions
	if len(raw) == 0 {
		raw = r.Outputs
	}
	var rows []json.RawMessage
	if err := json.Unmarshal(raw, &rows); err != nil {
		return nil, fmt.Errorf("predict response: want an array of predictions: %w", err)
	}
	out := make([][]float64, len(rows))
	for i, row := range rows {
		v, err := flatten[float64](row)
		if err != nil {
			var x float64
			if json.Unmarshal(row, &x) != nil {
				return nil, fmt.Errorf("predict response: predictions[%d]: %w", i, err)
			}
			v = []float64{x}
		}
		out[i] = v
	}
	return out, nil
}

// ArgMax returns the index of the largest value (the first on ties), or -1
// for an empty slice.
func ArgMax[T float32 | float64](v []T) int {
	best := -1
	for i, x := range v {
		if best < 0 || x > v[best] {
			best = i
		}
	}
	return best
}

// WriteError writes an OIP/TF-Serving error body {"error": msg} with status.
func WriteError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(ErrorResponse{Error: msg})
	_, _ = w.Write(append(b, '\n'))
}

// WriteJSON writes v as a JSON body with status.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		WriteError(w, http.StatusInternalServerError, "encoding response: "+err.Error())
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}
