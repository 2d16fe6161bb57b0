package modelserver

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"sync"

	"github.com/infadapter/infadapter/pkg/oip"
)

// The OIP v2 binary tensor data extension (Triton's "binary_tensor_data",
// which KServe's v2 clients speak): a request body is a JSON header of
// Inference-Header-Content-Length bytes followed by the raw bytes of every
// tensor whose parameters carry "binary_data_size", in the order the
// tensors appear; such tensors have no "data". FP32 values are
// little-endian IEEE 754. A client asks for binary outputs with the
// request parameter "binary_data_output": true or an output's parameter
// "binary_data": true; the response is then laid out the same way, with the
// header length in the response's Inference-Header-Content-Length.
//
// Decoding 784 FP32 values this way is a copy; as JSON it is a number parser
// over ~6 kB of text.

// decodeBinary reads a request in the binary extension; hl is the
// Inference-Header-Content-Length header. The one input must be FP32 when
// it is binary; a JSON-data input with no binary section is accepted too.
func (s *Server) decodeBinary(body []byte, hl []string, dst []float32) (v2Req, bool, error) {
	var req v2Req
	n, err := -1, error(nil)
	if len(hl) == 1 {
		n, err = strconv.Atoi(hl[0])
	}
	if err != nil || n < 0 || n > len(body) {
		return req, false, s.badRequest("infer request: %s %q: want one integer in [0, %d] (the body's length)", HeaderBinaryLength, hl, len(body))
	}
	header, rest := body[:n], body[n:]
	var r oip.InferRequest
	if len(bytes.TrimSpace(header)) == 0 {
		return req, false, s.badRequest("infer request: empty JSON header (%s = %d)", HeaderBinaryLength, n)
	}
	if f, ok := fastV2Header(header); ok {
		r = oip.InferRequest{ID: f.id, Parameters: f.params, Outputs: f.outputs,
			Inputs: []oip.Tensor{{Name: f.name, Shape: f.shape, Datatype: f.dtype, Parameters: f.inParams}}}
	} else if err := json.Unmarshal(header, &r); err != nil {
		return req, false, s.badRequest("infer request: JSON header (%s = %d bytes): %v", HeaderBinaryLength, n, err)
	}
	if err := s.checkV2(len(r.Inputs), r.Outputs); err != nil {
		return req, false, err
	}
	for i, o := range r.Outputs {
		if o.Name == "" {
			return req, false, s.badRequest("infer request: outputs[%d]: empty name", i)
		}
	}
	t := &r.Inputs[0]
	size, isBin, err := binarySize(t.Parameters)
	if err != nil {
		return req, false, s.badRequest("infer request: inputs[0] (%q): %v", t.Name, err)
	}
	if !isBin {
		if len(rest) != 0 {
			return req, false, s.badRequest("infer request: %d bytes after the JSON header but no input has parameters.binary_data_size", len(rest))
		}
		return s.decodeV2(header, dst)
	}
	req = v2Req{id: r.ID, name: t.Name, dtype: t.Datatype, shape: t.Shape, outputs: r.Outputs, params: r.Parameters}
	where := fmt.Sprintf("infer request: inputs[0] (%q)", t.Name)
	if t.Name == "" {
		return req, false, s.badRequest("infer request: inputs[0]: empty name")
	}
	if t.Datatype != oip.DTFP32 {
		return req, false, s.badRequest("%s: datatype %q in binary form; this server takes FP32", where, t.Datatype)
	}
	if len(t.Data) != 0 && string(t.Data) != "null" {
		return req, false, s.badRequest("%s: has both \"data\" and parameters.binary_data_size", where)
	}
	elems, err := oip.Elements(t.Shape)
	if err != nil {
		return req, false, s.badRequest("%s: %v", where, err)
	}
	if size != 4*elems {
		return req, false, s.badRequest("%s: binary_data_size %d, shape %v of FP32 needs %d bytes", where, size, t.Shape, 4*elems)
	}
	if int64(len(rest)) != size {
		return req, false, s.badRequest("%s: binary_data_size %d, but %d bytes follow the JSON header", where, size, len(rest))
	}
	for off := 0; off < len(rest); off += 4 {
		dst = append(dst, math.Float32frombits(binary.LittleEndian.Uint32(rest[off:])))
	}
	req.in = dst
	if err := s.checkExamples(len(req.in), "inputs[0]"); err != nil {
		return req, false, err
	}
	binOut, err := binaryOutput(req.params, req.outputs)
	return req, binOut, err
}

// binarySize reads parameters.binary_data_size: a non-negative integer.
func binarySize(p map[string]any) (int64, bool, error) {
	v, ok := p["binary_data_size"]
	if !ok {
		return 0, false, nil
	}
	f, isNum := v.(float64)
	if !isNum || f < 0 || f != math.Trunc(f) || f > 1<<40 {
		return 0, false, fmt.Errorf("parameters.binary_data_size = %v: want a non-negative integer", v)
	}
	return int64(f), true, nil
}

// binaryOutput reports whether the response carries its output in binary:
// the output's own "binary_data" parameter if given, else the request's
// "binary_data_output". Both must be booleans.
func binaryOutput(params map[string]any, outputs []oip.RequestOutput) (bool, error) {
	bin := false
	if v, ok := params["binary_data_output"]; ok {
		b, isBool := v.(bool)
		if !isBool {
			return false, &oip.RequestError{Status: http.StatusBadRequest, Msg: fmt.Sprintf("infer request: parameters.binary_data_output = %v: want true or false", v)}
		}
		bin = b
	}
	for i, o := range outputs {
		if v, ok := o.Parameters["binary_data"]; ok {
			b, isBool := v.(bool)
			if !isBool {
				return false, &oip.RequestError{Status: http.StatusBadRequest, Msg: fmt.Sprintf("infer request: outputs[%d].parameters.binary_data = %v: want true or false", i, v)}
			}
			bin = b
		}
	}
	return bin, nil
}

// Buffers reused across requests: a body, the decoded input and the
// outputs of one request would otherwise be ~10 kB of garbage each.
type byteBuf struct{ b []byte }
type floatBuf struct{ f []float32 }

// poolMax bounds what goes back into the pools, so one huge request does
// not pin its buffers for the process's life.
const poolMax = 1 << 20

var (
	bytePool  = sync.Pool{New: func() any { return &byteBuf{} }}
	floatPool = sync.Pool{New: func() any { return &floatBuf{} }}
)

func getBytes(n int) *byteBuf {
	bb := bytePool.Get().(*byteBuf)
	if cap(bb.b) < n {
		bb.b = make([]byte, n)
	}
	bb.b = bb.b[:n]
	return bb
}

func putBytes(bb *byteBuf) {
	if bb != nil && cap(bb.b) <= poolMax {
		bytePool.Put(bb)
	}
}

func getFloats() *floatBuf { return floatPool.Get().(*floatBuf) }

func putFloats(fb *floatBuf) {
	if cap(fb.f) <= poolMax/4 {
		floatPool.Put(fb)
	}
}

// readBody reads the request body into a pooled buffer, honouring
// MaxBodyBytes with oip.ReadBody's 413. A body with a Content-Length is
// read in one piece into a buffer of that size; a chunked one goes through
// oip.ReadBody.
func (s *Server) readBody(r *http.Request) (*byteBuf, error) {
	max := s.maxBody()
	if r.ContentLength < 0 {
		b, err := oip.ReadBody(r.Body, max)
		return &byteBuf{b: b}, err
	}
	if r.ContentLength > max {
		return nil, &oip.RequestError{Status: http.StatusRequestEntityTooLarge,
			Msg: fmt.Sprintf("request body larger than the limit of %d bytes", max)}
	}
	bb := getBytes(int(r.ContentLength))
	if _, err := io.ReadFull(r.Body, bb.b); err != nil {
		return bb, &oip.RequestError{Status: http.StatusBadRequest, Msg: "reading body: " + err.Error()}
	}
	return bb, nil
}
