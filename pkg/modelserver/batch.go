package modelserver

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Batcher is a server-side dynamic batcher in the manner of Triton's: it
// queues single requests and runs up to MaxBatch queued examples as one
// ONNX Runtime run, which amortises the per-run cost (for the smallest
// model most of a 12 µs inference) and runs the model's kernels back to
// back with warm caches.
//
// Delay is how long a batch that is not yet full waits for more requests
// after its first one is taken. 0 — the default — never waits: a batch is
// whatever is already queued when a worker is free, so at low load every
// request runs alone at once (no added latency) and under load batches
// form from the requests that queued during the previous run.
//
// One loop per model worker takes batches from one queue, so batches run
// in parallel on all workers.
type Batcher struct {
	model    *Model
	maxBatch int
	delay    time.Duration
	queue    chan *batchItem
	stop     chan struct{}
	stopped  chan struct{} // closed once the loops are gone and the queue is drained
	wg       sync.WaitGroup
	once     sync.Once
	// observe, when set, is told the size (examples) of every batch run.
	observe func(examples int)
}

type batchItem struct {
	ctx  context.Context
	in   []float32 // one or more examples
	out  []float32 // outputs appended here
	err  error
	done chan struct{}
}

// BatchConfig configures a Batcher.
type BatchConfig struct {
	// MaxBatch is the most examples in one run (≥ 2, ≤ the model's MaxRunBatch).
	MaxBatch int
	// Delay is the longest a non-full batch waits for more requests (≥ 0).
	Delay time.Duration
	// Observe, if set, receives each run's batch size (for metrics).
	Observe func(examples int)
}

// NewBatcher starts the batching loops over m; Close stops them.
func NewBatcher(m *Model, cfg BatchConfig) (*Batcher, error) {
	if cfg.MaxBatch < 2 || cfg.MaxBatch > m.MaxRunBatch() {
		return nil, fmt.Errorf("batcher: max batch %d, want 2..%d (the model's MaxRunBatch)", cfg.MaxBatch, m.MaxRunBatch())
	}
	if cfg.Delay < 0 {
		return nil, fmt.Errorf("batcher: delay %v, want ≥ 0", cfg.Delay)
	}
	b := &Batcher{model: m, maxBatch: cfg.MaxBatch, delay: cfg.Delay, observe: cfg.Observe,
		queue: make(chan *batchItem, 4*cfg.MaxBatch*m.Workers()), stop: make(chan struct{}), stopped: make(chan struct{})}
	for range m.Workers() {
		b.wg.Add(1)
		go b.loop()
	}
	return b, nil
}

// ErrBatcherClosed is returned by Infer after Close.
var ErrBatcherClosed = errors.New("batcher closed")

// Infer queues in (whole examples) and returns its outputs appended to
// out. A request with more examples than MaxBatch runs on its own at batch
// 1 (Model.Infer). If ctx ends while the request is queued it is dropped
// from its batch; once its batch runs, Infer waits for the run to finish.
func (b *Batcher) Infer(ctx context.Context, in []float32, out []float32) ([]float32, error) {
	per := b.model.InputSize()
	if len(in) == 0 || len(in)%per != 0 {
		return out, fmt.Errorf("input has %d values, want a multiple of %d", len(in), per)
	}
	if len(in)/per > b.maxBatch {
		return b.model.Infer(ctx, in, out)
	}
	it := &batchItem{ctx: ctx, in: in, out: out, done: make(chan struct{})}
	select {
	case b.queue <- it:
	case <-ctx.Done():
		return out, ctx.Err()
	case <-b.stop:
		return out, ErrBatcherClosed
	}
	select {
	case <-it.done:
	case <-b.stopped:
		// No loop runs any more; an item not done now never will be.
		select {
		case <-it.done:
		default:
			return out, ErrBatcherClosed
		}
	}
	return it.out, it.err
}

// Close stops the loops after the batches in progress; queued requests
// fail with ErrBatcherClosed.
func (b *Batcher) Close() {
	b.once.Do(func() {
		close(b.stop)
		b.wg.Wait()
		defer close(b.stopped)
		for {
			select {
			case it := <-b.queue:
				it.err = ErrBatcherClosed
				close(it.done)
			default:
				return
			}
		}
	})
}

func (b *Batcher) loop() {
	defer b.wg.Done()
	per := b.model.InputSize()
	items := make([]*batchItem, 0, b.maxBatch)
	in := make([]float32, 0, b.maxBatch*per)
	out := make([]float32, 0, b.maxBatch*b.model.OutputSize())
	var carry *batchItem // taken from the queue but did not fit the last batch
	var timer *time.Timer
	for {
		first := carry
		carry = nil
		if first == nil {
			select {
			case first = <-b.queue:
			case <-b.stop:
				return
			}
		}
		items = append(items[:0], first)
		n := len(first.in) / per
		var expired <-chan time.Time
		if b.delay > 0 && n < b.maxBatch {
			if timer == nil {
				timer = time.NewTimer(b.delay)
			} else {
				timer.Reset(b.delay)
			}
			expired = timer.C
		}
	collect:
		for n < b.maxBatch {
			var it *batchItem
			if expired == nil {
				select { // no delay: only what is queued now
				case it = <-b.queue:
				default:
					break collect
				}
			} else {
				select {
				case it = <-b.queue:
				case <-expired:
					expired = nil
					break collect
				case <-b.stop:
					break collect
				}
			}
			k := len(it.in) / per
			if n+k > b.maxBatch {
				carry = it
				break
			}
			items = append(items, it)
			n += k
		}
		if expired != nil {
			timer.Stop() // Go ≥ 1.23: no stale tick is delivered after Stop or Reset
		}
		b.run(items, in, out)
	}
}

// run executes one batch and hands every item its slice of the outputs.
func (b *Batcher) run(items []*batchItem, in, out []float32) {
	in = in[:0]
	live := items[:0]
	for _, it := range items {
		if err := it.ctx.Err(); err != nil {
			it.err = err
			close(it.done)
			continue
		}
		in = append(in, it.in...)
		live = append(live, it)
	}
	if len(live) == 0 {
		return
	}
	per := b.model.InputSize()
	if b.observe != nil {
		b.observe(len(in) / per)
	}
	out, err := b.model.RunBatch(context.Background(), in, out[:0])
	off, outPer := 0, b.model.OutputSize()
	for _, it := range live {
		k := len(it.in) / per
		if err != nil {
			it.err = err
		} else {
			it.out = append(it.out, out[off:off+k*outPer]...)
		}
		off += k * outPer
		close(it.done)
	}
}
