package dispatcher

import (
	"errors"
	"fmt"
	"time"
)

// Config configures a Dispatcher. Zero fields take the defaults of Default
// when passed through WithDefaults; Validate reports every problem at once.
type Config struct {
	// SLO is the latency objective of a request (P99 target). It derives
	// the request timeout and drives load shedding. 0 disables both.
	SLO time.Duration `json:"slo,omitempty"`
	// RequestTimeout bounds one client request including its retry; 0 means
	// TimeoutSLOMultiple × SLO, or 30 s without an SLO.
	RequestTimeout time.Duration `json:"requestTimeout,omitempty"`
	// TimeoutSLOMultiple derives RequestTimeout from the SLO: a request
	// that takes several SLOs is worthless to the client and only holds a
	// backend slot. Default 4.
	TimeoutSLOMultiple float64 `json:"timeoutSLOMultiple,omitempty"`
	// Shed enables SLO-aware load shedding (needs SLO > 0).
	Shed bool `json:"shed,omitempty"`
	// MaxBodyBytes limits a request body; larger bodies get 413. Default 8 MiB.
	MaxBodyBytes int64 `json:"maxBodyBytes,omitempty"`
	// ValidateJSON rejects inference bodies that are not well-formed JSON
	// with 400 before they reach a backend. Default true via Default().
	ValidateJSON bool `json:"validateJSON"`

	// HealthInterval is the period of active health checks; 0 disables them.
	HealthInterval time.Duration `json:"healthInterval,omitempty"`
	// HealthTimeout bounds one health check. Default 1 s.
	HealthTimeout time.Duration `json:"healthTimeout,omitempty"`
	// UnhealthyThreshold consecutive failed checks mark a backend down;
	// HealthyThreshold consecutive passing ones bring it back. Defaults 2, 1.
	UnhealthyThreshold int `json:"unhealthyThreshold,omitempty"`
	HealthyThreshold   int `json:"healthyThreshold,omitempty"`

	// EjectAfter consecutive failed requests (connection errors, 502/503/504)
	// eject a backend for EjectBase × 2^(ejections-1), capped at EjectMax.
	// Defaults 3, 1 s, 30 s.
	EjectAfter int           `json:"ejectAfter,omitempty"`
	EjectBase  time.Duration `json:"ejectBase,omitempty"`
	EjectMax   time.Duration `json:"ejectMax,omitempty"`

	// MaxConnsPerBackend caps the connections (in use + idle keep-alive)
	// to one backend; requests beyond it wait for a free connection,
	// bounded by their timeout, rather than opening more sockets. Default
	// 256, far above the parallelism of a CPU model server.
	MaxConnsPerBackend int `json:"maxConnsPerBackend,omitempty"`
	// DialTimeout bounds connecting to a backend. Default 1 s.
	DialTimeout time.Duration `json:"dialTimeout,omitempty"`
	// HistorySeconds is how many seconds of per-second arrival counts each
	// model keeps. Default 3600.
	HistorySeconds int `json:"historySeconds,omitempty"`

	// AdminToken is the bearer token of the admin API; empty disables the
	// admin API (every call gets 401).
	AdminToken string `json:"-"`
}

// Default returns the defaults: no SLO (timeout 30 s), 8 MiB bodies, JSON
// validation on, health checks every 1 s, ejection after 3 failures.
func Default() Config {
	return Config{
		TimeoutSLOMultiple: 4,
		MaxBodyBytes:       8 << 20,
		ValidateJSON:       true,
		HealthInterval:     time.Second,
		HealthTimeout:      time.Second,
		UnhealthyThreshold: 2,
		HealthyThreshold:   1,
		EjectAfter:         3,
		EjectBase:          time.Second,
		EjectMax:           30 * time.Second,
		MaxConnsPerBackend: 256,
		DialTimeout:        time.Second,
		HistorySeconds:     3600,
	}
}

// WithDefaults fills zero fields from Default (booleans are left alone).
func (c Config) WithDefaults() Config {
	d := Default()
	if c.TimeoutSLOMultiple == 0 {
		c.TimeoutSLOMultiple = d.TimeoutSLOMultiple
	}
	if c.MaxBodyBytes == 0 {
		c.MaxBodyBytes = d.MaxBodyBytes
	}
	if c.HealthTimeout == 0 {
		c.HealthTimeout = d.HealthTimeout
	}
	if c.UnhealthyThreshold == 0 {
		c.UnhealthyThreshold = d.UnhealthyThreshold
	}
	if c.HealthyThreshold == 0 {
		c.HealthyThreshold = d.HealthyThreshold
	}
	if c.EjectAfter == 0 {
		c.EjectAfter = d.EjectAfter
	}
	if c.EjectBase == 0 {
		c.EjectBase = d.EjectBase
	}
	if c.EjectMax == 0 {
		c.EjectMax = d.EjectMax
	}
	if c.MaxConnsPerBackend == 0 {
		c.MaxConnsPerBackend = d.MaxConnsPerBackend
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = d.DialTimeout
	}
	if c.HistorySeconds == 0 {
		c.HistorySeconds = d.HistorySeconds
	}
	return c
}

// Timeout is the effective per-request timeout.
func (c Config) Timeout() time.Duration {
	switch {
	case c.RequestTimeout > 0:
		return c.RequestTimeout
	case c.SLO > 0:
		return time.Duration(c.TimeoutSLOMultiple * float64(c.SLO))
	}
	return 30 * time.Second
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if c.SLO < 0 {
		bad("slo must be >= 0, got %v", c.SLO)
	}
	if c.RequestTimeout < 0 {
		bad("requestTimeout must be >= 0, got %v", c.RequestTimeout)
	}
	if c.RequestTimeout == 0 && c.SLO > 0 && !(c.TimeoutSLOMultiple >= 1) {
		bad("timeoutSLOMultiple must be >= 1, got %v", c.TimeoutSLOMultiple)
	}
	if c.Shed && c.SLO <= 0 {
		bad("shed needs slo > 0")
	}
	if c.MaxBodyBytes <= 0 {
		bad("maxBodyBytes must be > 0, got %d", c.MaxBodyBytes)
	}
	if c.HealthInterval < 0 {
		bad("healthInterval must be >= 0, got %v", c.HealthInterval)
	}
	if c.HealthInterval > 0 && c.HealthTimeout <= 0 {
		bad("healthTimeout must be > 0, got %v", c.HealthTimeout)
	}
	if c.UnhealthyThreshold < 1 || c.HealthyThreshold < 1 {
		bad("unhealthyThreshold and healthyThreshold must be >= 1, got %d and %d", c.UnhealthyThreshold, c.HealthyThreshold)
	}
	if c.EjectAfter < 1 {
		bad("ejectAfter must be >= 1, got %d", c.EjectAfter)
	}
	if c.EjectBase <= 0 || c.EjectMax < c.EjectBase {
		bad("need 0 < ejectBase <= ejectMax, got %v and %v", c.EjectBase, c.EjectMax)
	}
	if c.MaxConnsPerBackend < 1 {
		bad("maxConnsPerBackend must be >= 1, got %d", c.MaxConnsPerBackend)
	}
	if c.DialTimeout <= 0 {
		bad("dialTimeout must be > 0, got %v", c.DialTimeout)
	}
	if c.HistorySeconds < 1 || c.HistorySeconds > 7*24*3600 {
		bad("historySeconds must be in [1, 604800], got %d", c.HistorySeconds)
	}
	return errors.Join(errs...)
}
