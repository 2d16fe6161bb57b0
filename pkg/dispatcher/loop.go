package dispatcher

import (
	"context"
	"fmt"
	"time"

	"github.com/infadapter/infadapter/pkg/loop"
)

// Model is one logical model seen as the adaptation loop's Router and
// LoadSource. Get it from Dispatcher.Model.
type Model struct {
	d    *Dispatcher
	name string
}

var (
	_ loop.Router            = (*Model)(nil)
	_ loop.LoadSource        = (*Model)(nil)
	_ loop.VariantLoadSource = (*Model)(nil)
)

// Model returns the loop-facing view of a logical model (which need not
// exist yet: SetRoutes creates it).
func (d *Dispatcher) Model(name string) *Model { return &Model{d: d, name: name} }

// SetRoutes replaces the model's backends with routes (one per instance)
// atomically, then waits until removed instances have no request in
// flight, so the loop can retire them right after it returns. The wait is
// bounded by ctx.
func (m *Model) SetRoutes(ctx context.Context, routes []loop.Route) error {
	bs := make([]Backend, len(routes))
	for i, r := range routes {
		bs[i] = Backend{Variant: r.Variant, URL: r.URL, Weight: r.Weight}
	}
	if err := m.d.SetBackends(m.name, bs); err != nil {
		return fmt.Errorf("set routes: %w", err)
	}
	return m.d.WaitDrained(ctx, m.name)
}

// History implements loop.LoadSource (see Dispatcher.History).
func (m *Model) History(now time.Time, max int) []float64 {
	h := m.d.History(m.name, now, max)
	if h == nil {
		return []float64{}
	}
	return h
}

// VariantRPS implements loop.VariantLoadSource (see Dispatcher.VariantRPS).
func (m *Model) VariantRPS(now time.Time, window time.Duration) map[string]float64 {
	return m.d.VariantRPS(m.name, now, window)
}
