package oip

import (
	"fmt"
	"net/http"
	"strings"
)

// Kind is what a request path addresses.
type Kind int

// Path kinds. The zero value is KindUnknown.
const (
	KindUnknown       Kind = iota
	KindServerLive         // GET /v2/health/live
	KindServerReady        // GET /v2/health/ready
	KindServerMeta         // GET /v2
	KindModelMeta          // GET /v2/models/{name}[/versions/{v}]
	KindModelReady         // GET /v2/models/{name}[/versions/{v}]/ready
	KindInfer              // POST /v2/models/{name}[/versions/{v}]/infer
	KindTFPredict          // POST /v1/models/{name}[/versions/{v}]:predict
	KindTFModelStatus      // GET /v1/models/{name}[/versions/{v}]
)

var kindNames = [...]string{"unknown", "server-live", "server-ready", "server-meta", "model-meta", "model-ready", "infer", "tf-predict", "tf-status"}

// String names the kind (used as a bounded metric label).
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return "unknown"
}

// PerModel reports whether the kind addresses one model (and so has a Model).
func (k Kind) PerModel() bool { return k >= KindModelMeta }

// IsInference reports whether the kind carries an inference request body.
func (k Kind) IsInference() bool { return k == KindInfer || k == KindTFPredict }

// Method is the HTTP method the kind expects.
func (k Kind) Method() string {
	if k.IsInference() {
		return http.MethodPost
	}
	return http.MethodGet
}

// Route is a parsed request path.
type Route struct {
	Kind    Kind
	Model   string // empty for server-level kinds
	Version string // optional model version; empty when absent
}

// ParsePath parses an OIP v2 or TF Serving REST path. It returns an error
// (a *RequestError with status 404) for any other path. Model names may not
// be empty or contain '/' or ':' (':' would be ambiguous in TF Serving's
// "{name}:predict").
func ParsePath(p string) (Route, error) {
	switch p {
	case "/v2/health/live":
		return Route{Kind: KindServerLive}, nil
	case "/v2/health/ready":
		return Route{Kind: KindServerReady}, nil
	case "/v2", "/v2/":
		return Route{Kind: KindServerMeta}, nil
	}
	if rest, ok := strings.CutPrefix(p, "/v2/models/"); ok {
		return parseV2(p, rest)
	}
	if rest, ok := strings.CutPrefix(p, "/v1/models/"); ok {
		return parseV1(p, rest)
	}
	return Route{}, notFound("unknown path %q: want /v2/models/{name}/infer, /v1/models/{name}:predict, /v2/health/{live,ready}", p)
}

func parseV2(p, rest string) (Route, error) {
	parts := strings.Split(rest, "/")
	r := Route{Model: parts[0]}
	if err := checkName(p, r.Model); err != nil {
		return Route{}, err
	}
	parts = parts[1:]
	if len(parts) >= 2 && parts[0] == "versions" {
		r.Version = parts[1]
		if err := checkName(p, r.Version); err != nil {
			return Route{}, err
		}
		parts = parts[2:]
	}
	switch {
	case len(parts) == 0:
		r.Kind = KindModelMeta
	case len(parts) == 1 && parts[0] == "infer":
		r.Kind = KindInfer
	case len(parts) == 1 && parts[0] == "ready":
		r.Kind = KindModelReady
	default:
		return Route{}, notFound("unknown path %q: after /v2/models/{name} want /infer, /ready or nothing", p)
	}
	return r, nil
}

func parseV1(p, rest string) (Route, error) {
	r := Route{Kind: KindTFModelStatus}
	if head, ok := strings.CutSuffix(rest, ":predict"); ok {
		r.Kind = KindTFPredict
		rest = head
	}
	parts := strings.Split(rest, "/")
	r.Model = parts[0]
	if err := checkName(p, r.Model); err != nil {
		return Route{}, err
	}
	switch {
	case len(parts) == 1:
	case len(parts) == 3 && parts[1] == "versions":
		r.Version = parts[2]
		if err := checkName(p, r.Version); err != nil {
			return Route{}, err
		}
	default:
		return Route{}, notFound("unknown path %q: want /v1/models/{name}[/versions/{v}][:predict]", p)
	}
	return r, nil
}

func checkName(p, n string) error {
	if n == "" {
		return notFound("path %q: empty model name or version", p)
	}
	if strings.ContainsAny(n, ":/?#") {
		return notFound("path %q: model name or version %q contains one of \":/?#\"", p, n)
	}
	return nil
}

// Path renders the route back to its canonical path.
func (r Route) Path() string {
	ver := ""
	switch r.Kind {
	case KindServerLive:
		return "/v2/health/live"
	case KindServerReady:
		return "/v2/health/ready"
	case KindServerMeta:
		return "/v2"
	case KindModelMeta, KindModelReady, KindInfer:
		if r.Version != "" {
			ver = "/versions/" + r.Version
		}
		suffix := map[Kind]string{KindModelMeta: "", KindModelReady: "/ready", KindInfer: "/infer"}[r.Kind]
		return "/v2/models/" + r.Model + ver + suffix
	case KindTFPredict, KindTFModelStatus:
		if r.Version != "" {
			ver = "/versions/" + r.Version
		}
		if r.Kind == KindTFPredict {
			return "/v1/models/" + r.Model + ver + ":predict"
		}
		return "/v1/models/" + r.Model + ver
	}
	return "/"
}

// WithModel returns the route addressed to another model name (the
// dispatcher's logical → variant rewrite). The version is dropped: a
// variant's backend serves its own version.
func (r Route) WithModel(model string) Route {
	r.Model = model
	r.Version = ""
	return r
}

// InferPath is the OIP v2 inference path of a model.
func InferPath(model string) string { return "/v2/models/" + model + "/infer" }

// PredictPath is the TF Serving REST predict path of a model.
func PredictPath(model string) string { return "/v1/models/" + model + ":predict" }

// ModelReadyPath is the OIP v2 per-model readiness path.
func ModelReadyPath(model string) string { return "/v2/models/" + model + "/ready" }

// ServerReadyPath is the OIP v2 server readiness path (used by health checks).
const ServerReadyPath = "/v2/health/ready"

// ServerLivePath is the OIP v2 server liveness path.
const ServerLivePath = "/v2/health/live"

func notFound(format string, args ...any) error {
	return &RequestError{Status: http.StatusNotFound, Msg: fmt.Sprintf(format, args...)}
}
