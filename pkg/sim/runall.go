package sim

import (
	"fmt"
	"sync"
)

// RunAll runs every policy on the same trace and seed, up to workers at a
// time (≤ 0: one per policy), sharing one calibrator. Results come back in
// policy order, so output does not depend on scheduling. progress, if not
// nil, is called (from several goroutines) with simulated seconds done.
func RunAll(cfg Config, rps []float64, pols []Policy, workers int, progress func(seconds int)) ([]*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cal := NewCalibrator(cfg.SLO.Seconds(), cfg.ServiceCV)
	if workers <= 0 {
		workers = len(pols)
	}
	out := make([]*Result, len(pols))
	errs := make([]error, len(pols))
	sem := make(chan struct{}, workers)
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, p := range pols {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			var pr func(int)
			if progress != nil {
				pr = func(n int) { mu.Lock(); progress(n); mu.Unlock() }
			}
			out[i], errs[i] = RunWithProgress(cfg, rps, p, cal, pr)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("policy %s: %w", pols[i].Decider.Name(), err)
		}
	}
	return out, nil
}
