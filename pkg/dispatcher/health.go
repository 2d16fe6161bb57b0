package dispatcher

import (
	"context"
	"io"
	"net/http"
	"sync"

	"github.com/infadapter/infadapter/pkg/oip"
)

// healthLoop probes every live backend each HealthInterval.
func (d *Dispatcher) healthLoop() {
	defer d.wg.Done()
	t := d.clock.NewTicker(d.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-d.stop:
			return
		case <-t.C():
			d.CheckHealth(context.Background())
		}
	}
}

// CheckHealth probes every backend once (GET /v2/health/ready, 200 = pass)
// in parallel and updates their health: UnhealthyThreshold consecutive
// failures mark one down, HealthyThreshold consecutive passes bring it back.
// The health loop calls it every HealthInterval; tests call it directly.
func (d *Dispatcher) CheckHealth(ctx context.Context) {
	d.mu.Lock()
	type item struct {
		model string
		b     *backend
	}
	var items []item
	for m, bs := range d.backends {
		for _, b := range bs {
			items = append(items, item{m, b})
		}
	}
	d.mu.Unlock()
	var wg sync.WaitGroup
	results := make([]bool, len(items))
	for i, it := range items {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = d.probe(ctx, it.b)
		}()
	}
	wg.Wait()
	changed := map[string]bool{}
	d.mu.Lock()
	defer d.mu.Unlock()
	for i, it := range items {
		b := it.b
		if results[i] {
			b.hcFails, b.hcPasses = 0, b.hcPasses+1
			if !b.healthy.Load() && b.hcPasses >= d.cfg.HealthyThreshold {
				b.healthy.Store(true)
				changed[it.model] = true
				d.log.Info("backend healthy", "model", it.model, "variant", b.spec.Variant, "url", b.spec.URL)
			}
		} else {
			b.hcPasses, b.hcFails = 0, b.hcFails+1
			if b.healthy.Load() && b.hcFails >= d.cfg.UnhealthyThreshold {
				b.healthy.Store(false)
				changed[it.model] = true
				d.log.Warn("backend unhealthy", "model", it.model, "variant", b.spec.Variant, "url", b.spec.URL)
			}
		}
	}
	for name := range changed {
		if m := d.model(name); m != nil {
			d.updateHealthGauges(name, m.tab.Load())
		}
	}
}

func (d *Dispatcher) probe(ctx context.Context, b *backend) bool {
	ctx, cancel := context.WithTimeout(ctx, d.cfg.HealthTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.base+oip.ServerReadyPath, nil)
	if err != nil {
		return false
	}
	resp, err := b.transport.RoundTrip(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
