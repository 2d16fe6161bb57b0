package oip

import "encoding/json"

// Datatypes of OIP v2 tensors.
const (
	DTBool   = "BOOL"
	DTUint8  = "UINT8"
	DTUint16 = "UINT16"
	DTUint32 = "UINT32"
	DTUint64 = "UINT64"
	DTInt8   = "INT8"
	DTInt16  = "INT16"
	DTInt32  = "INT32"
	DTInt64  = "INT64"
	DTFP16   = "FP16"
	DTFP32   = "FP32"
	DTFP64   = "FP64"
	DTBytes  = "BYTES"
)

var datatypes = map[string]bool{
	DTBool: true, DTUint8: true, DTUint16: true, DTUint32: true, DTUint64: true,
	DTInt8: true, DTInt16: true, DTInt32: true, DTInt64: true,
	DTFP16: true, DTFP32: true, DTFP64: true, DTBytes: true,
}

// IsNumeric reports whether dt is a known numeric (non-BYTES, non-BOOL) datatype.
func IsNumeric(dt string) bool { return datatypes[dt] && dt != DTBytes && dt != DTBool }

// Tensor is one named input or output tensor of OIP v2. Data holds the
// tensor's elements in row-major order, either flat or nested as the shape;
// it stays raw JSON so the dispatcher and server only decode what they use.
// Use Float32s/Float64s/Strings to read it and NewFP32/NewINT64 to build one.
type Tensor struct {
	Name       string          `json:"name"`
	Shape      []int64         `json:"shape"`
	Datatype   string          `json:"datatype"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Data       json.RawMessage `json:"data"`
}

// RequestOutput asks for one output by name.
type RequestOutput struct {
	Name       string         `json:"name"`
	Parameters map[string]any `json:"parameters,omitempty"`
}

// InferRequest is the body of POST /v2/models/{name}/infer.
type InferRequest struct {
	ID         string          `json:"id,omitempty"`
	Parameters map[string]any  `json:"parameters,omitempty"`
	Inputs     []Tensor        `json:"inputs"`
	Outputs    []RequestOutput `json:"outputs,omitempty"`
}

// InferResponse is the body answering an InferRequest.
type InferResponse struct {
	ModelName    string         `json:"model_name"`
	ModelVersion string         `json:"model_version,omitempty"`
	ID           string         `json:"id,omitempty"`
	Parameters   map[string]any `json:"parameters,omitempty"`
	Outputs      []Tensor       `json:"outputs"`
}

// ErrorResponse is the body of every OIP v2 (and TF Serving) error answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// LiveResponse answers GET /v2/health/live.
type LiveResponse struct {
	Live bool `json:"live"`
}

// ReadyResponse answers GET /v2/health/ready.
type ReadyResponse struct {
	Ready bool `json:"ready"`
}

// ModelReadyResponse answers GET /v2/models/{name}/ready.
type ModelReadyResponse struct {
	Name  string `json:"name"`
	Ready bool   `json:"ready"`
}

// ServerMetadata answers GET /v2.
type ServerMetadata struct {
	Name       string   `json:"name"`
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"`
}

// TensorMetadata describes one input or output of a model; -1 in Shape is a
// variable dimension (e.g. batch).
type TensorMetadata struct {
	Name     string  `json:"name"`
	Datatype string  `json:"datatype"`
	Shape    []int64 `json:"shape"`
}

// ModelMetadata answers GET /v2/models/{name}.
type ModelMetadata struct {
	Name     string           `json:"name"`
	Versions []string         `json:"versions,omitempty"`
	Platform string           `json:"platform"`
	Inputs   []TensorMetadata `json:"inputs"`
	Outputs  []TensorMetadata `json:"outputs"`
}

// PredictRequest is the body of TF Serving's POST /v1/models/{name}:predict:
// either "instances" (row format: a list, one entry per example) or
// "inputs" (columnar format), never both.
type PredictRequest struct {
	SignatureName string          `json:"signature_name,omitempty"`
	Instances     json.RawMessage `json:"instances,omitempty"`
	Inputs        json.RawMessage `json:"inputs,omitempty"`
}

// PredictResponse answers a PredictRequest: "predictions" for the row
// format, "outputs" for the columnar one.
type PredictResponse struct {
	Predictions json.RawMessage `json:"predictions,omitempty"`
	Outputs     json.RawMessage `json:"outputs,omitempty"`
}

// TFModelStatus answers GET /v1/models/{name}.
type TFModelStatus struct {
	ModelVersionStatus []TFVersionStatus `json:"model_version_status"`
}

// TFVersionStatus is one version's state in TFModelStatus ("AVAILABLE" when serving).
type TFVersionStatus struct {
	Version string `json:"version"`
	State   string `json:"state"`
	Status  struct {
		ErrorCode    string `json:"error_code"`
		ErrorMessage string `json:"error_message"`
	} `json:"status"`
}

// VariantHeader is the response header in which the dispatcher (and the
// model server) name the variant that served a request.
const VariantHeader = "X-Infadapter-Variant"
