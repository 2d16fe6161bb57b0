package modelserver

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

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
	return errors.Join(errs...)
}

// Server is the HTTP face of a Model: an http.Handler for the OIP v2 and
// TF Serving REST paths plus /metrics.
type Server struct {
	cfg     Config
	model   *Model
	ready   atomic.Bool
	reg     *prometheus.Registry
	metrics *metrics
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
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s := &Server{cfg: cfg, model: model, reg: reg, metrics: newMetrics(reg, cfg.Name, model.Workers())}
	return s, nil
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
			Extensions: []string{}})
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
		s.fail(w, route.Kind, start, &oip.RequestError{Status: http.StatusServiceUnavailable, Msg: "model " + s.cfg.Name + " is not ready (warming up)"})
		return
	}
	body, err := oip.ReadBody(r.Body, s.cfg.MaxBodyBytes)
	if err != nil {
		s.fail(w, route.Kind, start, err)
		return
	}
	var in []float32
	var id string
	if route.Kind == oip.KindInfer {
		in, id, err = s.decodeV2(body)
	} else {
		in, err = s.decodeTF(body)
	}
	if err != nil {
		s.fail(w, route.Kind, start, err)
		return
	}
	n := len(in) / s.model.InputSize()
	t0 := time.Now()
	out, err := s.model.Infer(r.Context(), in, make([]float32, 0, n*s.model.OutputSize()))
	s.metrics.inference.Observe(time.Since(t0).Seconds())
	if err != nil {
		if r.Context().Err() != nil {
			// The client went away while queued: 499 in nginx's vocabulary.
			s.metrics.observe(route.Kind, 499, time.Since(start))
			return
		}
		s.fail(w, route.Kind, start, err)
		return
	}
	w.Header().Set(oip.VariantHeader, s.cfg.Name)
	if route.Kind == oip.KindInfer {
		shape := append([]int64{int64(n)}, trimBatch(s.model.OutputShape())...)
		oip.WriteJSON(w, http.StatusOK, oip.InferResponse{ModelName: s.cfg.Name, ModelVersion: "1", ID: id,
			Outputs: []oip.Tensor{oip.NewFP32(s.model.OutputName(), shape, out)}})
	} else {
		rows := make([]json.RawMessage, n)
		per := s.model.OutputSize()
		for i := range rows {
			rows[i] = oip.NewFP32("p", []int64{int64(per)}, out[i*per:(i+1)*per]).Data
		}
		b, _ := json.Marshal(rows)
		oip.WriteJSON(w, http.StatusOK, oip.PredictResponse{Predictions: b})
	}
	s.metrics.observe(route.Kind, http.StatusOK, time.Since(start))
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
// request. Any shape is accepted whose element count is a whole number of
// examples (so [n,1,28,28], [n,784] and [784] all work for a 1×28×28 model).
func (s *Server) decodeV2(body []byte) ([]float32, string, error) {
	if req, in, ok := fastV2(body); ok {
		if err := s.checkV2(req); err != nil {
			return nil, "", err
		}
		if err := s.checkExamples(len(in), "inputs[0]"); err != nil {
			return nil, "", err
		}
		return in, req.ID, nil
	}
	req, err := oip.DecodeInferRequest(body)
	if err != nil {
		return nil, "", err
	}
	if err := s.checkV2(req); err != nil {
		return nil, "", err
	}
	t := &req.Inputs[0]
	if !oip.IsNumeric(t.Datatype) {
		return nil, "", s.badRequest("infer request: inputs[0] (%q): datatype %s, want a numeric type such as FP32", t.Name, t.Datatype)
	}
	in, err := t.Float32s()
	if err != nil {
		return nil, "", s.badRequest("infer request: inputs[0] (%q): %v", t.Name, err)
	}
	if err := s.checkExamples(len(in), "inputs[0]"); err != nil {
		return nil, "", err
	}
	return in, req.ID, nil
}

// checkV2 checks a decoded request against the model: one input, known outputs.
func (s *Server) checkV2(req *oip.InferRequest) error {
	if len(req.Inputs) != 1 {
		return s.badRequest("infer request: %d inputs; model %q takes exactly one (%q)", len(req.Inputs), s.cfg.Name, s.model.InputName())
	}
	for i, o := range req.Outputs {
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
