package dispatcher

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/yaml"
)

// File is the YAML/JSON configuration of a standalone dispatcher process
// (`infadapter dispatch --config`). Durations are Go duration strings.
//
//	listen: ":8080"
//	adminListen: "127.0.0.1:8081"   # admin API + /metrics; "" = off
//	slo: 750ms
//	shed: true
//	healthInterval: 1s
//	models:
//	  fmnist:
//	    - {variant: cnn-s, url: "http://127.0.0.1:9001", weight: 0.7, concurrency: 1}
//	    - {variant: cnn-m, url: "http://127.0.0.1:9002", weight: 0.3}
type File struct {
	Listen      string `json:"listen"`
	AdminListen string `json:"adminListen"`

	SLO                string  `json:"slo"`
	RequestTimeout     string  `json:"requestTimeout"`
	TimeoutSLOMultiple float64 `json:"timeoutSLOMultiple"`
	Shed               bool    `json:"shed"`
	MaxBodyBytes       int64   `json:"maxBodyBytes"`
	ValidateJSON       *bool   `json:"validateJSON"`
	HealthInterval     string  `json:"healthInterval"`
	HealthTimeout      string  `json:"healthTimeout"`
	UnhealthyThreshold int     `json:"unhealthyThreshold"`
	HealthyThreshold   int     `json:"healthyThreshold"`
	EjectAfter         int     `json:"ejectAfter"`
	EjectBase          string  `json:"ejectBase"`
	EjectMax           string  `json:"ejectMax"`
	MaxConnsPerBackend int     `json:"maxConnsPerBackend"`
	DialTimeout        string  `json:"dialTimeout"`
	HistorySeconds     int     `json:"historySeconds"`
	// EventLoops is how many epoll event loops serve inference requests
	// (EventServer, Linux); 0 serves them with a goroutine per connection
	// (Server). Unset: DefaultEventLoops().
	EventLoops *int     `json:"eventLoops"`
	Models     Backends `json:"models"`
}

// Backends maps a logical model to its backends.
type Backends map[string][]Backend

// ParseFile parses a YAML or JSON File, rejecting unknown fields.
func ParseFile(b []byte) (File, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return File{}, fmt.Errorf("dispatcher config: %w", err)
	}
	var f File
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return File{}, fmt.Errorf("dispatcher config: %w", err)
	}
	return f, nil
}

// Config converts the file's dispatcher settings (unset ones default) and
// validates them, reporting every bad field.
func (f File) Config() (Config, error) {
	c := Default()
	var errs []error
	dur := func(name, s string, dst *time.Duration) {
		if s == "" {
			return
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %q is not a duration like 750ms", name, s))
			return
		}
		*dst = d
	}
	dur("slo", f.SLO, &c.SLO)
	dur("requestTimeout", f.RequestTimeout, &c.RequestTimeout)
	dur("healthInterval", f.HealthInterval, &c.HealthInterval)
	dur("healthTimeout", f.HealthTimeout, &c.HealthTimeout)
	dur("ejectBase", f.EjectBase, &c.EjectBase)
	dur("ejectMax", f.EjectMax, &c.EjectMax)
	dur("dialTimeout", f.DialTimeout, &c.DialTimeout)
	setIf := func(v int, dst *int) {
		if v != 0 {
			*dst = v
		}
	}
	if f.TimeoutSLOMultiple != 0 {
		c.TimeoutSLOMultiple = f.TimeoutSLOMultiple
	}
	c.Shed = f.Shed
	if f.MaxBodyBytes != 0 {
		c.MaxBodyBytes = f.MaxBodyBytes
	}
	if f.ValidateJSON != nil {
		c.ValidateJSON = *f.ValidateJSON
	}
	setIf(f.UnhealthyThreshold, &c.UnhealthyThreshold)
	setIf(f.HealthyThreshold, &c.HealthyThreshold)
	setIf(f.EjectAfter, &c.EjectAfter)
	setIf(f.MaxConnsPerBackend, &c.MaxConnsPerBackend)
	setIf(f.HistorySeconds, &c.HistorySeconds)
	if f.EventLoops != nil && (*f.EventLoops < 0 || *f.EventLoops > maxEventLoops) {
		errs = append(errs, fmt.Errorf("eventLoops must be in [0, %d], got %d", maxEventLoops, *f.EventLoops))
	}
	if err := c.Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, m := range slices.Sorted(maps.Keys(f.Models)) {
		if err := validModelName(m); err != nil {
			errs = append(errs, err)
		}
		for i, b := range f.Models[m] {
			if err := b.validate(fmt.Sprintf("models.%s[%d]", m, i)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return c, errors.Join(errs...)
}

// ParseBackendFlag parses "model=variant@URL[*weight]" (weight default 1),
// e.g. "fmnist=cnn-s@http://127.0.0.1:9001*0.7".
func ParseBackendFlag(s string) (string, Backend, error) {
	model, rest, ok := strings.Cut(s, "=")
	variant, u, ok2 := strings.Cut(rest, "@")
	if !ok || !ok2 || model == "" {
		return "", Backend{}, fmt.Errorf("backend %q: want model=variant@URL[*weight]", s)
	}
	b := Backend{Variant: variant, URL: u, Weight: 1}
	if i := strings.LastIndex(u, "*"); i >= 0 {
		w, err := strconv.ParseFloat(u[i+1:], 64)
		if err != nil {
			return "", Backend{}, fmt.Errorf("backend %q: weight %q is not a number", s, u[i+1:])
		}
		b.URL, b.Weight = u[:i], w
	}
	if err := validModelName(model); err != nil {
		return "", Backend{}, fmt.Errorf("backend %q: %w", s, err)
	}
	if err := b.validate(fmt.Sprintf("backend %q", s)); err != nil {
		return "", Backend{}, err
	}
	return model, b, nil
}
