package localmode

import (
	"context"
	"math"
	"sync"
	"time"

	"k8s.io/utils/clock"

	"github.com/infadapter/infadapter/pkg/loadgen"
)

// replayer replays a per-second schedule with pkg/loadgen in consecutive
// chunks of chunkSeconds, each started on time in its own goroutine, so the
// results of the replay stream into the recorder while it runs (loadgen
// returns results only when a Run ends). Chunks overlap freely: a slow
// chunk's stragglers never delay the next chunk's arrivals, so the replay
// stays open-loop. Each chunk gets its own seed and continues the request
// bodies where the previous chunk's expected count ended, so the whole
// replay walks through the (shuffled) test set instead of resending its
// first images.
type replayer struct {
	src          loadgen.Source
	chunkSeconds int
	seed         uint64
	clock        clock.Clock
	rec          *recorder
}

// offsetSource shifts request i to sample off+i of the base source.
type offsetSource struct {
	base loadgen.Source
	off  int
}

func (o offsetSource) Len() int                    { return o.base.Len() }
func (o offsetSource) Sample(i int) loadgen.Sample { return o.base.Sample(o.off + i) }

// run replays schedule and returns when every chunk has finished (or ctx is
// done and the in-flight requests have returned).
func (r *replayer) run(ctx context.Context, cfg loadgen.Config, schedule []float64) {
	start := r.clock.Now()
	r.rec.begin(start)
	var wg sync.WaitGroup
	off := 0
	for c := 0; c*r.chunkSeconds < len(schedule); c++ {
		from := c * r.chunkSeconds
		to := min(from+r.chunkSeconds, len(schedule))
		at := start.Add(time.Duration(from) * time.Second)
		if wait := at.Sub(r.clock.Now()); wait > 0 {
			t := r.clock.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
			case <-t.C():
			}
		}
		if ctx.Err() != nil {
			break
		}
		ccfg := cfg
		ccfg.Seed = r.seed + uint64(c)*7919
		runner, err := loadgen.NewRunner(ccfg, offsetSource{r.src, off})
		if err != nil {
			r.rec.fail(err)
			break
		}
		expected := 0.0
		for _, v := range schedule[from:to] {
			expected += v
		}
		off += int(math.Round(expected))
		wg.Add(1)
		go func(from int, part []float64) {
			defer wg.Done()
			defer runner.Close()
			_, results, err := runner.Run(ctx, part)
			if err != nil {
				r.rec.fail(err)
				return
			}
			r.rec.add(from, results)
		}(from, schedule[from:to])
	}
	wg.Wait()
}
