package modelserver

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/infadapter/infadapter/pkg/oip"
)

// Config configures a Server.
type Config struct {
	// Name is the model name the server answers to (OIP v2 and TF Serving paths).
	Name string
	// MaxBatch bounds the examples in one request (each runs at batch 1); 0 means 64.
	MaxBatch int
	// MaxBodyBytes bounds request bodies; 0 means oip.DefaultMaxBodyBytes.
	MaxBodyBytes int64
	// Batch turns on server-side dynamic batching when Batch.MaxBatch ≥ 2
	// (the model must be loaded with MaxRunBatch ≥ Batch.MaxBatch); off by
	// default, so a request runs at batch 1 as the committed profiles were
	// measured. See Batcher.
	Batch BatchConfig
}

// Validate reports every problem of the config.
func (c Config) Validate() error {
	var errs []error
	if c.Name == "" {
		errs = append(errs, errors.New("name: empty"))
	} else if _, err := oip.ParsePath(oip.InferPath(c.Name)); err != nil {
		errs = append(errs, fmt.Errorf("name %q: not usable in a URL path: %w", c.Name, err))
	}
	if c.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("maxBatch = %d: must be ≥ 0", c.MaxBatch))
	}
	if c.MaxBodyBytes < 0 {
		errs = append(errs, fmt.Errorf("maxBodyBytes = %d: must be ≥ 0", c.MaxBodyBytes))
	}
	if c.Batch.MaxBatch < 0 {
		errs = append(errs, fmt.Errorf("dynamic batch = %d: must be ≥ 0 (0 or 1: off)", c.Batch.MaxBatch))
	}
	if c.Batch.Delay < 0 {
		errs = append(errs, fmt.Errorf("dynamic batch delay = %v: must be ≥ 0", c.Batch.Delay))
	}
	return errors.Join(errs...)
}

// Server is the HTTP face of a Model: an http.Handler for the OIP v2 and
// TF Serving REST paths plus /metrics.
type Server struct {
	cfg   Config
	model *Model
	// runner runs a request's examples: the model, or the batcher in front of it.
	runner  inferer
	batcher *Batcher
	// slots bounds the requests doing CPU work (decode, inference,
	// encode) at once to the model's workers; nil with dynamic batching,
	// which needs requests queued. See inferBody.
	slots   chan struct{}
	ready   atomic.Bool
	reg     *prometheus.Registry
	metrics *metrics
	// Per-request constants, made once: the variant header value, the JSON
	// of the model and output names, the OIP v2 success counter and latency.
	variantHdr            []string
	nameJSON, outNameJSON []byte
	okV2                  prometheus.Counter
	latV2                 prometheus.Observer
}

// NewServer wraps model. The server answers not-ready until SetReady(true)
// (normally after WarmUp).
func NewServer(cfg Config, model *Model) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("model server config: %w", err)
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 64
	}
	var err error
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{cfg: cfg, model: model, reg: reg, metrics: newMetrics(reg, cfg.Name, model.Workers())}
	s.variantHdr = []string{cfg.Name}
	s.nameJSON, _ = json.Marshal(cfg.Name)
	s.outNameJSON, _ = json.Marshal(model.OutputName())
	s.okV2 = s.metrics.requests.WithLabelValues("v2", codeLabel(http.StatusOK))
	s.latV2 = s.metrics.latency.WithLabelValues("v2")
	s.runner = model
	if cfg.Batch.MaxBatch < 2 {
		s.slots = make(chan struct{}, model.Workers())
	}
	if cfg.Batch.MaxBatch >= 2 {
		bc := cfg.Batch
		bc.Observe = func(n int) { s.metrics.batch.Observe(float64(n)) }
		if s.batcher, err = NewBatcher(model, bc); err != nil {
			return nil, fmt.Errorf("model server config: %w", err)
		}
		s.runner = s.batcher
	}
	return s, nil
}

// inferer runs whole examples: *Model at batch 1, or *Batcher.
type inferer interface {
	Infer(ctx context.Context, in, out []float32) ([]float32, error)
}

var (
	_ inferer = (*Model)(nil)
	_ inferer = (*Batcher)(nil)
)

// Close stops the dynamic batcher, if any (call after the HTTP server has
// shut down, before closing the model).
func (s *Server) Close() {
	if s.batcher != nil {
		s.batcher.Close()
	}
}

// SetReady flips readiness.
func (s *Server) SetReady(v bool) { s.ready.Store(v) }

// Ready reports readiness.
func (s *Server) Ready() bool { return s.ready.Load() }

// Registry is the server's Prometheus registry (served at /metrics).
func (s *Server) Registry() *prometheus.Registry { return s.reg }

// ServeHTTP routes OIP v2, TF Serving REST and /metrics.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/metrics" {
		promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{}).ServeHTTP(w, r)
		return
	}
	start := time.Now()
	route, err := oip.ParsePath(r.URL.Path)
	if err != nil {
		s.fail(w, route.Kind, start, err)
		return
	}
	if r.Method != route.Kind.Method() && !(r.Method == http.MethodHead && route.Kind.Method() == http.MethodGet) {
		w.Header().Set("Allow", route.Kind.Method())
		s.fail(w, route.Kind, start, &oip.RequestError{Status: http.StatusMethodNotAllowed,
			Msg: fmt.Sprintf("%s %s: method not allowed, use %s", r.Method, r.URL.Path, route.Kind.Method())})
		return
	}
	if route.Kind.PerModel() && route.Model != s.cfg.Name {
		s.fail(w, route.Kind, start, &oip.RequestError{Status: http.StatusNotFound,
			Msg: fmt.Sprintf("model %q not found; this server serves %q", route.Model, s.cfg.Name)})
		return
	}
	switch route.Kind {
	case oip.KindServerLive:
		oip.WriteJSON(w, http.StatusOK, oip.LiveResponse{Live: true})
	case oip.KindServerReady:
		oip.WriteJSON(w, s.readyStatus(), oip.ReadyResponse{Ready: s.Ready()})
	case oip.KindServerMeta:
		oip.WriteJSON(w, http.StatusOK, oip.ServerMetadata{Name: "infadapter-modelserver", Version: ORTVersion,
			Extensions: []string{"binary_tensor_data"}})
	case oip.KindModelReady:
		oip.WriteJSON(w, s.readyStatus(), oip.ModelReadyResponse{Name: s.cfg.Name, Ready: s.Ready()})
	case oip.KindModelMeta:
		oip.WriteJSON(w, http.StatusOK, oip.ModelMetadata{Name: s.cfg.Name, Versions: []string{"1"}, Platform: "onnxruntime_onnx",
			Inputs:  []oip.TensorMetadata{{Name: s.model.InputName(), Datatype: oip.DTFP32, Shape: s.model.InputShape()}},
			Outputs: []oip.TensorMetadata{{Name: s.model.OutputName(), Datatype: oip.DTFP32, Shape: s.model.OutputShape()}}})
	case oip.KindTFModelStatus:
		st := oip.TFVersionStatus{Version: "1", State: "AVAILABLE"}
		if !s.Ready() {
			st.State = "LOADING"
		}
		st.Status.ErrorCode = "OK"
		oip.WriteJSON(w, http.StatusOK, oip.TFModelStatus{ModelVersionStatus: []oip.TFVersionStatus{st}})
	case oip.KindInfer, oip.KindTFPredict:
		s.infer(w, r, route, start)
	default:
		s.fail(w, route.Kind, start, &oip.RequestError{Status: http.StatusNotFound, Msg: "unknown path " + r.URL.Path})
	}
}

func (s *Server) readyStatus() int {
	if s.Ready() {
		return http.StatusOK
	}
	return http.StatusServiceUnavailable
}

func (s *Server) fail(w http.ResponseWriter, k oip.Kind, start time.Time, err error) {
	code := oip.StatusOf(err)
	if k.IsInference() {
		s.metrics.observe(k, code, time.Since(start))
	}
	oip.WriteError(w, code, err.Error())
}

func (s *Server) infer(w http.ResponseWriter, r *http.Request, route oip.Route, start time.Time) {
	if !s.Ready() {
		s.fail(w, route.Kind, start, s.notReady())
		return
	}
	body, err := s.readBody(r)
	defer putBytes(body)
	if err != nil {
		s.fail(w, route.Kind, start, err)
		return
	}
	s.inferBody(r.Context(), w, route.Kind, body.b, r.Header[HeaderBinaryLength], start)
}

func (s *Server) notReady() error {
	return &oip.RequestError{Status: http.StatusServiceUnavailable, Msg: "model " + s.cfg.Name + " is not ready (warming up)"}
}

// inferBody answers an inference request (kind KindInfer or KindTFPredict)
// whose body has been read; binHdr is the request's
// Inference-Header-Content-Length values (nil when absent). Both the
// net/http path (infer) and the fast path (ServeFast) end here.
//
// The request holds one of the model's worker slots from decoding to
// encoding, so requests do their CPU work one per worker. Without that,
// the next requests' decoding ran while ORT ran (the ORT call leaves the
// goroutine's P to others), time-slicing the same cores: the run was
// preempted mid-way and its weights (cnn-m: 3.5 MB, against a 4 MB L2
// here) partly evicted. Measured with a thread-CPU timer around Run
// (cnn-m, JSON, 8 connections, three interleaved pairs): the run's wall
// time 594/602/516 µs → 496/553/469 µs, its own CPU time 538/545/473 →
// 480/533/455 µs. The body is read before, so a slow client holds no slot.
func (s *Server) inferBody(ctx context.Context, w http.ResponseWriter, kind oip.Kind, body []byte, binHdr []string, start time.Time) {
	if s.slots != nil {
		select {
		case s.slots <- struct{}{}:
			defer func() { <-s.slots }()
		case <-ctx.Done():
			s.metrics.observe(kind, 499, time.Since(start)) // gone while queued, as below
			return
		}
	}
	var err error
	inBuf := getFloats()
	defer putFloats(inBuf)
	var req v2Req
	binOut := false
	if kind == oip.KindInfer {
		if binHdr != nil {
			req, binOut, err = s.decodeBinary(body, binHdr, inBuf.f[:0])
		} else {
			req, binOut, err = s.decodeV2(body, inBuf.f[:0])
		}
	} else {
		req.in, err = s.decodeTF(body)
	}
	if err != nil {
		s.fail(w, kind, start, err)
		return
	}
	inBuf.f = req.in[:0] // keep a grown buffer for the next request
	n := len(req.in) / s.model.InputSize()
	outBuf := getFloats()
	defer putFloats(outBuf)
	t0 := time.Now()
	out, err := s.runner.Infer(ctx, req.in, outBuf.f[:0])
	s.metrics.inference.Observe(time.Since(t0).Seconds())
	outBuf.f = out[:0]
	if err != nil {
		if ctx.Err() != nil {
			// The client went away while queued: 499 in nginx's vocabulary.
			s.metrics.observe(kind, 499, time.Since(start))
			return
		}
		s.fail(w, kind, start, err)
		return
	}
	h := w.Header()
	h[oip.VariantHeader] = s.variantHdr
	if kind == oip.KindInfer {
		resp := getBytes(0)
		defer putBytes(resp)
		if binOut {
			resp.b = s.appendV2Response(resp.b[:0], req.id, n, out, true)
			hlen := len(resp.b)
			for _, x := range out {
				resp.b = binary.LittleEndian.AppendUint32(resp.b, math.Float32bits(x))
			}
			h["Content-Type"] = ctBinary
			h[HeaderBinaryLength] = []string{strconv.Itoa(hlen)}
		} else {
			resp.b = append(s.appendV2Response(resp.b[:0], req.id, n, out, false), '\n')
			h["Content-Type"] = ctJSON
		}
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(resp.b)
		s.okV2.Inc()
		s.latV2.Observe(time.Since(start).Seconds())
		return
	}
	rows := make([]json.RawMessage, n)
	per := s.model.OutputSize()
	for i := range rows {
		rows[i] = oip.NewFP32("p", []int64{int64(per)}, out[i*per:(i+1)*per]).Data
	}
	b, _ := json.Marshal(rows)
	oip.WriteJSON(w, http.StatusOK, oip.PredictResponse{Predictions: b})
	s.metrics.observe(kind, http.StatusOK, time.Since(start))
}

// HeaderBinaryLength is the OIP v2 / Triton binary tensor data extension's
// header: the length of the JSON part of a body whose binary tensor data
// follows it.
const HeaderBinaryLength = "Inference-Header-Content-Length"

// Header values shared by every response (net/http only reads them).
var (
	ctJSON   = []string{"application/json"}
	ctBinary = []string{"application/octet-stream"}
)

// appendV2Response appends the JSON of an OIP v2 response with one FP32
// output of n examples: with the values as JSON numbers, or, when binary,
// without data and with parameters.binary_data_size (the caller appends
// the bytes). It is json.Marshal(oip.InferResponse{...}) without the
// reflection and the re-validation of the number array, which profiling
// showed as a visible share of a small model's request.
func (s *Server) appendV2Response(b []byte, id string, n int, out []float32, binary bool) []byte {
	b = append(b, `{"model_name":`...)
	b = append(b, s.nameJSON...)
	b = append(b, `,"model_version":"1"`...)
	if id != "" {
		b = append(b, `,"id":`...)
		b = appendJSONString(b, id)
	}
	b = append(b, `,"outputs":[{"name":`...)
	b = append(b, s.outNameJSON...)
	b = append(b, `,"shape":[`...)
	b = strconv.AppendInt(b, int64(n), 10)
	for _, d := range trimBatch(s.model.outShape) {
		b = append(b, ',')
		b = strconv.AppendInt(b, d, 10)
	}
	b = append(b, `],"datatype":"FP32",`...)
	if binary {
		b = append(b, `"parameters":{"binary_data_size":`...)
		b = strconv.AppendInt(b, int64(4*len(out)), 10)
		return append(b, `}}]}`...)
	}
	b = append(b, `"data":[`...)
	for i, x := range out {
		if i > 0 {
			b = append(b, ',')
		}
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			f = 0 // JSON cannot carry them; oip.NewFP32 does the same
		}
		b = strconv.AppendFloat(b, f, 'g', -1, 32)
	}
	return append(b, `]}]}`...)
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func trimBatch(shape []int64) []int64 {
	if len(shape) == 0 {
		return nil
	}
	return shape[1:]
}

func (s *Server) badRequest(format string, args ...any) error {
	return &oip.RequestError{Status: http.StatusBadRequest, Msg: fmt.Sprintf(format, args...)}
}

// decodeV2 reads the single FP32 (or other numeric) input of an OIP v2
// JSON request, appending its values to dst. Any shape is accepted whose
// element count is a whole number of examples (so [n,1,28,28], [n,784] and
// [784] all work for a 1×28×28 model). binOut reports whether the client
// asked for the outputs in binary form.
func (s *Server) decodeV2(body []byte, dst []float32) (v2Req, bool, error) {
	req, ok := fastV2(body, dst)
	if !ok {
		r, err := oip.DecodeInferRequest(body)
		if err != nil {
			return req, false, err
		}
		req = v2Req{id: r.ID, params: r.Parameters, outputs: r.Outputs}
		if err := s.checkV2(len(r.Inputs), r.Outputs); err != nil {
			return req, false, err
		}
		t := &r.Inputs[0]
		req.name, req.dtype, req.shape = t.Name, t.Datatype, t.Shape
		if !oip.IsNumeric(t.Datatype) {
			return req, false, s.badRequest("infer request: inputs[0] (%q): datatype %s, want a numeric type such as FP32", t.Name, t.Datatype)
		}
		if req.in, err = t.Float32s(); err != nil {
			return req, false, s.badRequest("infer request: inputs[0] (%q): %v", t.Name, err)
		}
	} else if err := s.checkV2(1, req.outputs); err != nil {
		return req, false, err
	}
	if err := s.checkExamples(len(req.in), "inputs[0]"); err != nil {
		return req, false, err
	}
	binOut, err := binaryOutput(req.params, req.outputs)
	return req, binOut, err
}

// checkV2 checks a decoded request against the model: one input, known outputs.
func (s *Server) checkV2(inputs int, outputs []oip.RequestOutput) error {
	if inputs != 1 {
		return s.badRequest("infer request: %d inputs; model %q takes exactly one (%q)", inputs, s.cfg.Name, s.model.InputName())
	}
	for i, o := range outputs {
		if o.Name != s.model.OutputName() {
			return s.badRequest("infer request: outputs[%d]: unknown output %q; model %q has %q", i, o.Name, s.cfg.Name, s.model.OutputName())
		}
	}
	return nil
}

func (s *Server) decodeTF(body []byte) ([]float32, error) {
	req, err := oip.DecodePredictRequest(body)
	if err != nil {
		return nil, err
	}
	rows, err := req.Rows()
	if err != nil {
		return nil, err
	}
	if len(rows) > s.cfg.MaxBatch {
		return nil, s.badRequest("predict request: %d examples, the limit is %d", len(rows), s.cfg.MaxBatch)
	}
	in := make([]float32, 0, len(rows)*s.model.InputSize())
	for i, row := range rows {
		if len(row) != s.model.InputSize() {
			return nil, s.badRequest("predict request: example %d has %d values, model %q wants %d (shape %v)", i, len(row), s.cfg.Name, s.model.InputSize(), s.model.InputShape())
		}
		in = append(in, row...)
	}
	return in, nil
}

func (s *Server) checkExamples(n int, where string) error {
	per := s.model.InputSize()
	if n == 0 || n%per != 0 {
		return s.badRequest("infer request: %s has %d values; model %q wants a multiple of %d (shape %v)", where, n, s.cfg.Name, per, s.model.InputShape())
	}
	if n/per > s.cfg.MaxBatch {
		return s.badRequest("infer request: %s holds %d examples, the limit is %d", where, n/per, s.cfg.MaxBatch)
	}
	return nil
}

var _ http.Handler = (*Server)(nil)

// codeLabel keeps the status label bounded.
func codeLabel(code int) string { return strconv.Itoa(code) }
