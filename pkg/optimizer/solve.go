package optimizer

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"sync"
)

// Solve returns an optimal allocation for p. It is exact: the returned
// allocation maximises, summed over services s,
//
//	Σ_i (l_i/λ_s)·acc_i − α_s·Σ_i cores_i/B − β_s·LC_s/max_i loadTime_i
//
// subject to Σ cores ≤ B over all services, each variant running 0 replicas
// or r ∈ [1, MaxReplicas] replicas of c ∈ [MinCores, MaxCoresPerReplica]
// cores, l_i ≤ r·capacity_i(c), Σ_i l_i = λ_s with the most accurate variants
// filled first, and LC_s the largest load time among the variants of s whose
// (cores, replicas) change to a non-zero value (0 if none). When some load
// cannot be served within B, the answer serves as much load as possible
// (total RPS over services), is marked Feasible=false, and among those has the
// best objective. λ = 0 needs nothing: every variant is switched off.
//
// # Why it is exact
//
//  1. Load assignment. For fixed capacities, filling the most accurate
//     variant first is both the rule we must follow and the optimal solution
//     of max Σ acc_i·l_i s.t. l_i ≤ cap_i, Σ l_i ≤ λ (a fractional knapsack
//     with unit weights). So processing the variants in descending accuracy
//     and assigning each the load min(cap, λ − load covered so far) is the
//     objective's own load split, and a variant's contribution
//     acc·(new covered − old covered)/λ − α·cores/B depends only on the
//     covered load before it and its own option. That makes a dynamic
//     programme over the state (cores used k, covered load L ≤ λ) exact.
//  2. Options. A variant's options matter only through (total cores,
//     capacity) and whether they equal its current configuration; the
//     greedy value and the covered load never decrease when a capacity
//     grows. So for each total core count only the
//     best capacity over all (c, r) with r·c = total is kept, and totals that
//     do not beat the capacity of a smaller total are dropped (Pareto set);
//     the current configuration is always kept as an extra option, since
//     keeping it costs no load time.
//  3. Dominance. Let a = acc_next/λ be the accuracy per RPS of the most
//     accurate variant still to come and pen(lc) = β·lc/maxLoadTime. Between
//     layers, state A = (k_A, L_A, v_A, lc_A) dominates B when k_A ≤ k_B,
//     L_A ≥ L_B and v_A − a·L_A ≥ v_B − a·L_B + max(0, pen(lc_A) − pen(lc_B)).
//     Any completion of B applied to A uses no more cores, covers at least
//     as much load, loses at most a·(L_A − L_B) of accuracy (the units B
//     still had to cover between L_B and L_A are worth at most a each; every
//     other unit is covered in A by the same or a more accurate variant),
//     and its final load cost max(lc, lc_completion) exceeds B's by at most
//     max(0, pen(lc_A) − pen(lc_B)). So dropping B never loses the optimum.
//     The check is two prefix-max queries over (load-cost level, cores):
//     one among kept states with lc' ≤ lc on v − a·L, one among lc' > lc on
//     v − a·L − pen(lc). LC takes at most N+1 values (0 or a load time), so
//     the true LC is tracked exactly in one pass.
//  4. Bounds. A state is also dropped when no completion can beat the best
//     complete allocation already seen with no more cores: the covered load
//     it can still reach is limited by the remaining cores times the best
//     remaining capacity per core, and the value of serving r more RPS is at
//     most r times the upper concave envelope of (cores per RPS, accuracy)
//     over the remaining variants at r's average core allowance (the LP
//     relaxation), minus the cheapest core cost. On larger problems a beam
//     pass (the 64 best states per layer) first finds good incumbents.
//     Bounds only remove states whose every completion is strictly worse
//     than a real allocation, so exactness is kept.
//  5. Reduced-cost fixing (reduced.go). Larger single-service problems
//     are split by load-cost level: the subproblem at level ℓ charges
//     β·ℓ/maxLoadTime up front and lets a variant with a longer load time
//     only stay off or keep its configuration; every subproblem answer is
//     a real allocation worth at least what it is charged, and the optimum
//     is charged exactly at its own level, so the best over the levels is
//     optimal. Two Lagrangian bounds (one that adapts the load price per
//     state) rule out most levels and drop every option and state that
//     cannot reach a floor; a level is done once an allocation at or above
//     its floor is known, and the floor falls to the best known allocation
//     at worst. Again only states whose every completion is worse than a
//     real allocation are removed.
//  6. Services. Each service's pass gives the best (served, objective) for
//     every core count k ≤ B; lexicographic pairs add, so a max-plus knapsack
//     over these tables (only at the core counts where a table improves) is
//     exact for the joint problem, maximising the sum of objectives.
//
// The property test TestBruteForce checks all of this against exhaustive
// enumeration on thousands of random small instances (replicas, several
// services, load costs, non-monotone capacities, infeasible loads).
//
// # Units and resolution
//
// Loads and capacities are handled as integers: in RPS when λ and every
// capacity are whole numbers (the paper's case, exact), otherwise in
// milli-RPS with capacities rounded down and λ rounded up to a milli-RPS
// (a conservative rounding that can only under-state capacity by < 0.001
// RPS per replica).
func Solve(p Problem) (Solution, error) {
	if err := p.Validate(); err != nil {
		return Solution{}, fmt.Errorf("invalid problem: %w", err)
	}
	s := newSolver(p)
	ws := workspaces.Get().(*workspace)
	s.workspace = *ws
	sol := s.solve()
	*ws = s.workspace
	workspaces.Put(ws)
	return sol, nil
}

// workspace holds scratch buffers reused across Solve calls (the layers
// themselves are not reused: they back the returned reconstruction).
type workspace struct {
	cands   []state
	ubs     []float64
	nextUB  []float64
	idx     []int32
	tmp     []int32
	cnt     []int32
	fenwick []float64
	psiBuf  []float32 // reduced.corePsi's table
}

var workspaces = sync.Pool{New: func() any { return new(workspace) }}

// option is one way to run a variant: r replicas of c cores.
type option struct {
	cores int32 // total cores r·c
	c, r  int32
	cap   int64 // total capacity in load units
}

// state is one DP state (cores used, covered load, value) with a back
// pointer for reconstruction.
type state struct {
	v      float64 // Σ acc·l/λ − α·Σcores/B so far
	lc     float64 // true largest load time of changed variants so far
	L      int64   // covered load, ≤ λ
	k      int32   // cores used
	parent int32   // index into the previous layer
	opt    int32   // index into the layer's options, −1 = off
	lvl    int32   // index of lc among the service's distinct load times
	g      float64 // Σ ρ_j over the variants so far (reduced.go; 0 when unused)
}

type run struct {
	layers [][]state
	opts   [][]option
}

// entry is the best found (served, objective) at ≤ k cores for a service.
type entry struct {
	L   int64
	obj float64
	run int32 // index into svc.runs, −1 = nothing runs
	idx int32 // index into the run's last layer
}

func better(L1 int64, v1 float64, L2 int64, v2 float64) bool {
	return L1 > L2 || (L1 == L2 && v1 > v2)
}

type svc struct {
	in      *Service
	order   []int // variant indices by descending accuracy
	lam     int64
	full    [][]option // per ordered variant: Pareto options
	cur     []option   // per ordered variant: the current option (cores 0 = none valid)
	lt      []float64  // per ordered variant: load time
	maxLT   float64
	runs    []run
	table   []entry // per k = 0..B: best recorded final state at ≤ k
	inc     []entry // per k: best objective of any complete allocation seen (bound only)
	alphaB  float64 // α/B
	betaLT  float64 // β/maxLT (0 when maxLT = 0)
	accLam  []float64
	curCfgs [][2]int    // per ordered variant: (c, r) now, (0,0) = off
	lag     [][]lagPair // per layer: Lagrangian multipliers for the bound (nil = off)
	levels  []float64   // 0 and the distinct load times, ascending
	ltLvl   []int32     // per ordered variant: index of its load time in levels
	rd      *reduced    // reduced-cost fixing for the current DP pass (nil = off)
	// offset is added to every value the DP computes: the load cost charged
	// up front by a load-cost level's subproblem (reduced.go), else 0.
	offset float64
}

type solver struct {
	p     Problem
	B     int
	minC  int
	maxC  int
	maxR  int
	scale float64
	svcs  []*svc
	workspace
}

func newSolver(p Problem) *solver {
	s := &solver{p: p, B: p.Budget}
	s.minC = max(1, p.MinCores)
	s.maxC = p.MaxCoresPerReplica
	if s.maxC <= 0 || s.maxC > s.B {
		s.maxC = s.B
	}
	s.maxR = max(1, p.MaxReplicas)
	s.scale = 1
	integral := func(x float64) bool { return x == math.Trunc(x) && math.Abs(x) < 1<<52 }
	for _, sv := range p.Services {
		if !integral(sv.Load) {
			s.scale = 1000
		}
		for _, v := range sv.Variants {
			for _, c := range v.Capacity {
				if !integral(c) {
					s.scale = 1000
				}
			}
		}
	}
	return s
}

// capAt returns the scaled capacity of one replica of v at c cores.
func (s *solver) capAt(v *Variant, c int) int64 {
	if len(v.Capacity) == 0 || c <= 0 {
		return 0
	}
	x := v.Capacity[min(c, len(v.Capacity)-1)]
	return int64(math.Floor(x*s.scale + 1e-9))
}

func (s *solver) prepare(sv *Service) *svc {
	n := len(sv.Variants)
	out := &svc{in: sv}
	out.order = make([]int, n)
	for i := range out.order {
		out.order[i] = i
	}
	sort.SliceStable(out.order, func(a, b int) bool {
		return sv.Variants[out.order[a]].Accuracy > sv.Variants[out.order[b]].Accuracy
	})
	out.lam = int64(math.Ceil(sv.Load*s.scale - 1e-9))
	if out.lam < 0 {
		out.lam = 0
	}
	out.full = make([][]option, n)
	out.cur = make([]option, n)
	out.lt = make([]float64, n)
	out.accLam = make([]float64, n)
	out.curCfgs = make([][2]int, n)
	if s.B > 0 {
		out.alphaB = sv.Alpha / float64(s.B)
	}
	best := make([]option, s.B+1)
	for oi, vi := range out.order {
		v := &sv.Variants[vi]
		out.lt[oi] = v.LoadTime
		out.maxLT = max(out.maxLT, v.LoadTime)
		if out.lam > 0 {
			out.accLam[oi] = v.Accuracy / float64(out.lam)
		}
		curC, curR := v.Current, v.CurrentReplicas
		if curC > 0 && curR <= 0 {
			curR = 1
		}
		if curC <= 0 {
			curC, curR = 0, 0
		}
		out.curCfgs[oi] = [2]int{curC, curR}
		if curC >= s.minC && curC <= s.maxC && curR <= s.maxR && curC*curR <= s.B {
			out.cur[oi] = option{cores: int32(curC * curR), c: int32(curC), r: int32(curR), cap: int64(curR) * s.capAt(v, curC)}
		}
		// Best capacity per total core count; ties prefer the current
		// configuration (no load cost), then fewer replicas.
		for k := range best {
			best[k] = option{cap: -1}
		}
		for c := s.minC; c <= s.maxC; c++ {
			one := s.capAt(v, c)
			for r := 1; r <= s.maxR && r*c <= s.B; r++ {
				k := r * c
				o := option{cores: int32(k), c: int32(c), r: int32(r), cap: int64(r) * one}
				b := &best[k]
				isCur := c == curC && r == curR
				if o.cap > b.cap || (o.cap == b.cap && isCur) {
					*b = o
				}
			}
		}
		var opts []option
		var top int64
		for k := s.minC; k <= s.B; k++ {
			if b := best[k]; b.cap > top {
				opts = append(opts, b)
				top = b.cap
			}
		}
		out.full[oi] = opts
	}
	if out.maxLT > 0 {
		out.betaLT = sv.Beta / out.maxLT
	}
	out.levels = []float64{0}
	if out.betaLT > 0 {
		out.levels = append(out.levels, out.lt...)
		slices.Sort(out.levels)
		out.levels = slices.Compact(out.levels)
	}
	out.ltLvl = make([]int32, n)
	for i, lt := range out.lt {
		if out.betaLT > 0 {
			j, _ := slices.BinarySearch(out.levels, lt)
			out.ltLvl[i] = int32(j)
		}
	}
	return out
}

// dp runs the layered DP for one service. beam > 0 keeps only the beam
// most promising states per layer (a heuristic pass that finds incumbents);
// beam = 0 is exact.
func (s *solver) dp(sv *svc, beam int) run {
	n := len(sv.order)
	r := run{layers: make([][]state, n+1)}
	// Options per variant (see dpOptionsExtra); extra[i] is the index of the
	// current configuration among them, or −1.
	var extra []int
	r.opts, extra = s.dpOptionsExtra(sv)
	nPar := make([]int, n) // how many of r.opts[i] come from the Pareto set
	for i := range n {
		nPar[i] = len(sv.full[i])
	}
	// Reduced-cost fixing (reduced.go): drop the options whose bound alone
	// is below the floor; rhos[i] holds the kept options' ρ values.
	rd := sv.rd
	var rhos [][]float64
	if rd != nil {
		rhos = make([][]float64, n)
		for i := range n {
			var kept []option
			var keptRho []float64
			np, ex := 0, -1
			for oi, o := range r.opts[i] {
				if rd.UM-rd.optLoss(sv, i, oi, o) < rd.floor {
					continue
				}
				if oi < nPar[i] {
					np++
				}
				if oi == extra[i] {
					ex = len(kept)
				}
				kept = append(kept, o)
				keptRho = append(keptRho, rd.rho[i][oi])
			}
			r.opts[i], rhos[i], nPar[i], extra[i] = kept, keptRho, np, ex
		}
	}
	// For the bound: per suffix of variants, the best capacity per core and
	// the upper envelope of (cores per unit of load, accuracy per unit) —
	// the LP relaxation of serving the rest of the load.
	effAfter := make([]float64, n+1)
	envs := make([][]envPoint, n+1)
	for i := n - 1; i >= 0; i-- {
		e := 0.0
		for _, o := range r.opts[i] {
			e = max(e, float64(o.cap)/float64(o.cores))
		}
		effAfter[i] = max(effAfter[i+1], e)
		pts := slices.Clone(envs[i+1])
		if e > 0 {
			pts = append(pts, envPoint{w: 1 / e, acc: sv.accLam[i]})
		}
		envs[i] = upperEnvelope(pts)
	}
	inc := sv.inc // best true (served, objective) at ≤ k found so far
	single := len(s.p.Services) == 1
	r.layers[0] = []state{{v: sv.offset, parent: -1, opt: -1}}
	B := int32(s.B)
	nl := len(sv.levels)
	W := s.B + 2
	if len(s.fenwick) < 2*(nl+1)*W {
		s.fenwick = make([]float64, 2*(nl+1)*W)
	}
	// Two 2-D Fenwick trees (level × cores, prefix max): f1 over levels ≤ j
	// holds v − a·L; f2 over levels > j (reversed index) holds
	// v − a·L − β·lc/maxLT.
	f1 := s.fenwick[:(nl+1)*W]
	f2 := s.fenwick[(nl+1)*W : 2*(nl+1)*W]
	query := func(f []float64, lv, k int) float64 {
		q := math.Inf(-1)
		for x := lv + 1; x > 0; x -= x & -x {
			row := f[x*W : x*W+W]
			for j := k + 1; j > 0; j -= j & -j {
				q = max(q, row[j])
			}
		}
		return q
	}
	update := func(f []float64, lv, k int, val float64) {
		for x := lv + 1; x <= nl; x += x & -x {
			row := f[x*W : x*W+W]
			for j := k + 1; j < W; j += j & -j {
				row[j] = max(row[j], val)
			}
		}
	}
	for i := 0; i < n; i++ {
		opts := r.opts[i]
		nPareto := nPar[i]
		accLam := sv.accLam[i]
		lt := sv.lt[i]
		ltLvl := sv.ltLvl[i]
		curC, curR := int32(sv.curCfgs[i][0]), int32(sv.curCfgs[i][1])
		last := i == n-1
		a := 0.0 // accuracy per unit of load of the next variant
		if !last {
			a = sv.accLam[i+1]
		}
		eff := effAfter[i+1]
		env := envs[i+1]
		lag := sv.lag
		// Incumbents at ≤ k (prefix max) for the bound.
		for k := 1; k <= s.B; k++ {
			if better(inc[k-1].L, inc[k-1].obj, inc[k].L, inc[k].obj) {
				inc[k] = inc[k-1]
			}
		}
		prev := r.layers[i]
		cands := s.cands[:0]
		ubs := s.ubs[:0]
		// push bounds a candidate and appends it unless no completion of it
		// can beat the incumbent at its core count.
		push := func(c state) {
			ub := c.v - sv.betaLT*c.lc
			rdBound := math.Inf(1)
			if rd != nil {
				thr := math.Inf(-1) // the beam pass ranks, it does not prune
				if beam == 0 {
					thr = rd.floor
					if inc[s.B].L == sv.lam {
						thr = max(thr, inc[s.B].obj-1e-9)
					}
				}
				bound := rd.base + c.g + rd.M[i+1][c.lvl]
				if bound < thr {
					return
				}
				if bound = min(bound, rd.stateBound(sv, i+1, &c, s.B, thr)); bound < thr {
					return
				}
				rdBound = bound
			}
			reach := c.L
			if !last {
				// One service: only the answer at the full budget matters,
				// so compare with the best allocation found at any size.
				// Several services: the table is needed at every k, and
				// a state at k can only end at k' ≥ k, where the
				// incumbents are at least inc[k].
				e := &inc[c.k]
				if single {
					e = &inc[s.B]
				}
				room := float64(sv.lam - c.L)
				reach += int64(min(room, math.Floor(float64(s.B-int(c.k))*eff+1e-9)))
				if reach < e.L && beam == 0 {
					return
				}
				if rr := float64(reach - c.L); rr > 0 {
					// Serving rr more units costs ≥ rr/eff cores and
					// earns ≤ rr·E(average cores per unit ≤ K/rr).
					K := float64(s.B - int(c.k))
					extra := rr * (envAt(env, K/rr) - sv.alphaB/eff)
					if lag != nil {
						extra = min(extra, lagBound(lag[i], K, rr))
					}
					ub += extra
				}
				// (The beam pass ranks by the bound but does not prune with
				// it, so that its best allocation survives as a path.)
				if reach == e.L && ub < e.obj-1e-12 && beam == 0 {
					return
				}
			}
			cands = append(cands, c)
			if rd != nil {
				ub = min(ub, rdBound)
			}
			ubs = append(ubs, float64(reach)*1e6+ub) // beam rank: reach, then bound
		}
		for pi := range prev {
			ps := &prev[pi]
			push(state{v: ps.v, lc: ps.lc, L: ps.L, k: ps.k, parent: int32(pi), opt: -1, lvl: ps.lvl, g: ps.g})
			room := sv.lam - ps.L
			if room <= 0 {
				continue
			}
			gen := func(oi int) bool {
				o := &opts[oi]
				k := ps.k + o.cores
				if k > B {
					return false
				}
				add := min(o.cap, room)
				lc, lvl := ps.lc, ps.lvl
				if (o.c != curC || o.r != curR) && lt > lc {
					lc, lvl = lt, ltLvl
				}
				v := ps.v + accLam*float64(add) - sv.alphaB*float64(o.cores)
				if add == room {
					// A complete allocation (the rest off): a feasible
					// incumbent at k cores.
					if obj := v - sv.betaLT*lc; better(sv.lam, obj, inc[k].L, inc[k].obj) {
						inc[k] = entry{L: sv.lam, obj: obj}
					}
				}
				g := ps.g
				if rd != nil {
					g += rhos[i][oi]
				}
				push(state{v: v, lc: lc, L: ps.L + add, k: k, parent: int32(pi), opt: int32(oi), lvl: lvl, g: g})
				return o.cap < room
			}
			// Pareto options ascend in cores and capacity: once one covers
			// the room, larger ones only cost more.
			done := -1 // options 0..done were generated (or over budget)
			for oi := 0; oi < nPareto; oi++ {
				done = oi
				if !gen(oi) {
					break
				}
			}
			// The current configuration costs no load time, so it is worth
			// trying even past the point where smaller options cover the room.
			if extra[i] > done {
				gen(extra[i])
			}
		}
		s.cands, s.ubs = cands, ubs
		if last && single {
			// One service: only the best final state is ever read (the
			// answer at the full budget), so keep just that one.
			best := -1
			for j := range cands {
				c := &cands[j]
				if b := &cands[max(best, 0)]; best < 0 || better(c.L, c.v-sv.betaLT*c.lc, b.L, b.v-sv.betaLT*b.lc) {
					best = j
				}
			}
			if best >= 0 {
				r.layers[i+1] = []state{cands[best]}
			} else {
				r.layers[i+1] = []state{}
			}
			break
		}
		// Dominance pruning (see Solve): order by L desc, k asc, value desc
		// and drop a state when a kept one with L' ≥ L and k' ≤ k has
		// v' − a·L' ≥ v − a·L + β·max(0, lc' − lc)/maxLT.
		idx := s.order(cands, sv.lam)
		for j := range s.fenwick[:2*(nl+1)*W] {
			s.fenwick[j] = math.Inf(-1)
		}
		next := make([]state, 0, len(cands)/4+1)
		nextUB := s.nextUB[:0]
		for _, ci := range idx {
			c := &cands[ci]
			u := c.v - a*float64(c.L)
			lv, k := int(c.lvl), int(c.k)
			if query(f1, lv, k) >= u {
				continue // dominated by a state with no larger load cost
			}
			pen := sv.betaLT * c.lc
			if lv+1 < nl && query(f2, nl-2-lv, k) >= u-pen {
				continue // dominated by a state with a larger load cost
			}
			update(f1, lv, k, u)
			update(f2, nl-1-lv, k, u-pen)
			next = append(next, *c)
			nextUB = append(nextUB, ubs[ci])
		}
		s.nextUB = nextUB
		if beam > 0 && len(next) > beam {
			order := make([]int, len(next))
			for j := range order {
				order[j] = j
			}
			slices.SortFunc(order, func(x, y int) int { return cmp.Compare(nextUB[y], nextUB[x]) })
			kept := make([]state, beam)
			for j := range kept {
				kept[j] = next[order[j]]
			}
			next = kept
		}
		r.layers[i+1] = next
	}
	return r
}

// solveService fills sv.table: the best (served, objective) at ≤ k cores.
func (s *solver) solveService(sv *svc) {
	sv.table = make([]entry, s.B+1)
	for k := range sv.table {
		sv.table[k] = entry{run: -1} // all off: serves 0, objective 0
	}
	sv.inc = slices.Clone(sv.table)
	if sv.lam == 0 || len(sv.order) == 0 {
		return // nothing to serve: everything off, objective 0
	}
	// Seed the bound with every single-variant allocation that serves λ.
	for i := range sv.order {
		for _, o := range sv.full[i] {
			if o.cap >= sv.lam {
				obj := sv.accLam[i]*float64(sv.lam) - sv.alphaB*float64(o.cores)
				if cc := sv.curCfgs[i]; int(o.c) != cc[0] || int(o.r) != cc[1] {
					obj -= sv.betaLT * sv.lt[i]
				}
				if better(sv.lam, obj, sv.inc[o.cores].L, sv.inc[o.cores].obj) {
					sv.inc[o.cores] = entry{L: sv.lam, obj: obj}
				}
				break
			}
		}
	}
	record := func(ri int) {
		r := sv.runs[ri]
		last := r.layers[len(r.layers)-1]
		for idx := range last {
			st := &last[idx]
			obj := st.v - sv.betaLT*st.lc
			if e := &sv.table[st.k]; better(st.L, obj, e.L, e.obj) {
				*e = entry{L: st.L, obj: obj, run: int32(ri), idx: int32(idx)}
			}
		}
		for k := 1; k <= s.B; k++ {
			if better(sv.table[k-1].L, sv.table[k-1].obj, sv.table[k].L, sv.table[k].obj) {
				sv.table[k] = sv.table[k-1]
			}
		}
	}
	// On larger problems a narrow beam pass first finds a near-optimal
	// allocation cheaply; the exact pass then prunes against it.
	nopts := 0
	for _, o := range sv.full {
		nopts += len(o)
	}
	if len(s.p.Services) == 1 && (nopts > 200 || forceReduced) && !noReduced && s.solveReduced(sv, record) {
		return
	}
	if nopts > 200 || forceLagrange {
		sv.runs = append(sv.runs, s.dp(sv, 64))
		record(len(sv.runs) - 1)
		s.lagrangian(sv, len(sv.runs)-1)
	}
	sv.runs = append(sv.runs, s.dp(sv, 0))
	record(len(sv.runs) - 1)
}

// choice is the reconstructed option per ordered variant (cores 0 = off).
func (s *solver) reconstruct(sv *svc, e entry) ([]option, []int64) {
	n := len(sv.order)
	opts := make([]option, n)
	loads := make([]int64, n)
	if e.run < 0 {
		return opts, loads
	}
	r := sv.runs[e.run]
	idx := e.idx
	for i := n; i > 0; i-- {
		st := r.layers[i][idx]
		prev := r.layers[i-1][st.parent]
		if st.opt >= 0 {
			opts[i-1] = r.opts[i-1][st.opt]
			loads[i-1] = st.L - prev.L
		}
		idx = st.parent
	}
	return opts, loads
}

func (s *solver) solve() Solution {
	for i := range s.p.Services {
		sv := s.prepare(&s.p.Services[i])
		s.solveService(sv)
		s.svcs = append(s.svcs, sv)
	}
	picks := make([]int, len(s.svcs)) // cores given to each service
	if len(s.svcs) == 1 {
		picks[0] = s.B
	} else {
		picks = s.knapsack()
	}
	var sol Solution
	sol.Feasible = true
	for si, sv := range s.svcs {
		sol.addService(s.result(sv, sv.table[picks[si]]))
	}
	return sol
}

// knapsack shares the budget between services: max Σ (served, objective)
// lexicographically over the core counts where each table improves.
func (s *solver) knapsack() []int {
	B := s.B
	type val struct {
		L   int64
		obj float64
	}
	f := make([]val, B+1)
	choice := make([][]int32, len(s.svcs))
	g := make([]val, B+1)
	for si, sv := range s.svcs {
		var bps []int
		for k := 0; k <= B; k++ {
			if k == 0 || better(sv.table[k].L, sv.table[k].obj, sv.table[k-1].L, sv.table[k-1].obj) {
				bps = append(bps, k)
			}
		}
		ch := make([]int32, B+1)
		for k := 0; k <= B; k++ {
			bestV := val{L: -1}
			bestP := 0
			for _, p := range bps {
				if p > k {
					break
				}
				e := sv.table[p]
				L, o := f[k-p].L+e.L, f[k-p].obj+e.obj
				if bestV.L < 0 || better(L, o, bestV.L, bestV.obj) {
					bestV, bestP = val{L, o}, p
				}
			}
			g[k] = bestV
			ch[k] = int32(bestP)
		}
		choice[si] = ch
		f, g = g, f
	}
	picks := make([]int, len(s.svcs))
	k := B
	for si := len(s.svcs) - 1; si >= 0; si-- {
		p := int(choice[si][k])
		picks[si] = p
		k -= p
	}
	return picks
}

func (s *solver) result(sv *svc, e entry) ServiceResult {
	in := sv.in
	res := ServiceResult{Name: in.Name, Allocations: []Allocation{}}
	opts, loads := s.reconstruct(sv, e)
	type alloc struct {
		vi int
		a  Allocation
	}
	var as []alloc
	var accL, lc float64
	var L int64
	for oi, vi := range sv.order {
		o := opts[oi]
		if o.cores == 0 {
			continue
		}
		v := &in.Variants[vi]
		rps := float64(loads[oi]) / s.scale
		as = append(as, alloc{vi, Allocation{Service: in.Name, Variant: v.Name, Cores: int(o.c), Replicas: int(o.r), RPS: rps}})
		res.Cores += int(o.cores)
		accL += v.Accuracy * rps
		L += loads[oi]
		if cc := sv.curCfgs[oi]; int(o.c) != cc[0] || int(o.r) != cc[1] {
			lc = max(lc, v.LoadTime)
		}
	}
	slices.SortFunc(as, func(x, y alloc) int { return cmp.Compare(x.vi, y.vi) })
	for _, a := range as {
		res.Allocations = append(res.Allocations, a.a)
	}
	res.Served = float64(L) / s.scale
	res.Feasible = L >= sv.lam
	if res.Served > 0 {
		res.Accuracy = accL / res.Served
	}
	if in.Load > 0 {
		res.Objective = accL / in.Load
	}
	if s.B > 0 {
		res.Objective -= in.Alpha * float64(res.Cores) / float64(s.B)
	}
	if sv.maxLT > 0 {
		res.Objective -= in.Beta * lc / sv.maxLT
	}
	return res
}

// envPoint is a variant in the bound's relaxation: w cores per unit of load
// at its best capacity per core, acc accuracy per unit of load (acc/λ).
type envPoint struct{ w, acc float64 }

// upperEnvelope returns the points on the upper concave hull of pts that
// matter for "best accuracy at average cost ≤ t": sorted by w ascending with
// acc strictly increasing.
func upperEnvelope(pts []envPoint) []envPoint {
	slices.SortFunc(pts, func(x, y envPoint) int {
		if c := cmp.Compare(x.w, y.w); c != 0 {
			return c
		}
		return cmp.Compare(y.acc, x.acc)
	})
	var h []envPoint
	for _, p := range pts {
		if len(h) > 0 && p.acc <= h[len(h)-1].acc {
			continue // costs more per unit, no more accurate
		}
		for len(h) >= 2 {
			a, b := h[len(h)-2], h[len(h)-1]
			// drop b if it lies on or below the segment a–p
			if (b.acc-a.acc)*(p.w-a.w) <= (p.acc-a.acc)*(b.w-a.w) {
				h = h[:len(h)-1]
				continue
			}
			break
		}
		h = append(h, p)
	}
	return h
}

// envAt is the best accuracy per unit of load when the mix may spend at
// most t cores per unit on average (concave, capped at the most accurate).
// Below the cheapest point it returns that point's accuracy (the reach
// bound already handles coverage).
func envAt(h []envPoint, t float64) float64 {
	if len(h) == 0 {
		return 0
	}
	if t <= h[0].w {
		return h[0].acc
	}
	for j := 1; j < len(h); j++ {
		if t <= h[j].w {
			a, b := h[j-1], h[j]
			return a.acc + (b.acc-a.acc)*(t-a.w)/(b.w-a.w)
		}
	}
	return h[len(h)-1].acc
}

// order returns candidate indices by covered load descending, then cores
// ascending (value order within ties does not matter for correctness).
// Two stable counting-sort passes when the load range is small compared to
// the number of candidates, else a comparison sort.
func (s *solver) order(cands []state, lam int64) []int32 {
	n := len(cands)
	idx := slices.Grow(s.idx[:0], n)[:n]
	s.idx = idx
	if lam > int64(8*n+4096) {
		for j := range idx {
			idx[j] = int32(j)
		}
		slices.SortFunc(idx, func(x, y int32) int {
			cx, cy := &cands[x], &cands[y]
			if c := cmp.Compare(cy.L, cx.L); c != 0 {
				return c
			}
			if c := cmp.Compare(cx.k, cy.k); c != 0 {
				return c
			}
			return cmp.Compare(cy.v, cx.v)
		})
		return idx
	}
	tmp := slices.Grow(s.tmp[:0], n)[:n]
	s.tmp = tmp
	nb := max(s.B+1, int(lam)+1) + 1
	cnt := slices.Grow(s.cnt[:0], nb)[:nb]
	s.cnt = cnt
	// pass 1: by k ascending into tmp
	clear(cnt[:s.B+2])
	for j := range cands {
		cnt[cands[j].k+1]++
	}
	for b := 1; b < s.B+2; b++ {
		cnt[b] += cnt[b-1]
	}
	for j := range cands {
		k := cands[j].k
		tmp[cnt[k]] = int32(j)
		cnt[k]++
	}
	// pass 2: stable by L descending into idx (bucket lam−L)
	m := int(lam) + 2
	clear(cnt[:m])
	for j := range cands {
		cnt[lam-cands[j].L+1]++
	}
	for b := 1; b < m; b++ {
		cnt[b] += cnt[b-1]
	}
	for _, j := range tmp {
		b := lam - cands[j].L
		idx[cnt[b]] = j
		cnt[b]++
	}
	return idx
}

// forceLagrange turns the Lagrangian bound on for small problems too, so
// that the brute-force tests cover it.
var forceLagrange = false

// forceReduced turns reduced-cost fixing on for small problems too, for the
// same reason; noReduced turns it off (the differential test).
var forceReduced, noReduced = false, false

// lagPair is one pair of Lagrange multipliers for a layer's bound: serving
// rr more RPS with at most K more cores is worth at most
// mu·K + nu·rr + d, where d = Σ_j max(0, max_o (acc_j/λ − nu)·cap_o −
// (α/B + mu)·cores_o) over the variants after the layer (weak duality of
// the LP relaxation; valid for any mu ≥ 0 and nu).
type lagPair struct{ mu, nu, d float64 }

func lagBound(ps []lagPair, K, rr float64) float64 {
	b := math.Inf(1)
	for _, p := range ps {
		b = min(b, p.mu*K+p.nu*rr+p.d)
	}
	return b
}

// lagrangian picks, per layer, multipliers that make the bound tight at the
// state the beam pass's best allocation passes through (its cores and
// covered load after that layer), by golden-section search on the convex
// dual, plus a few neighbours; the bound stays valid for every state.
func (s *solver) lagrangian(sv *svc, beamRun int) {
	n := len(sv.order)
	opts := sv.runs[beamRun].opts
	// probe (k, L) per layer from the beam's best allocation at B cores
	pk := make([]float64, n+1)
	pL := make([]float64, n+1)
	if e := sv.table[s.B]; e.run == int32(beamRun) {
		r := sv.runs[beamRun]
		idx := e.idx
		for i := n; i >= 0; i-- {
			st := r.layers[i][idx]
			pk[i], pL[i] = float64(st.k), float64(st.L)
			idx = st.parent
		}
	}
	top := 0.0
	accMax := 0.0
	for i, os := range opts {
		accMax = max(accMax, sv.accLam[i])
		for _, o := range os {
			top = max(top, sv.accLam[i]*float64(o.cap)/float64(o.cores))
		}
	}
	sv.lag = make([][]lagPair, n)
	for i := 0; i < n-1; i++ {
		d := func(mu, nu float64) float64 {
			sum := 0.0
			for j := i + 1; j < n; j++ {
				w := sv.accLam[j] - nu
				if w <= 0 {
					continue
				}
				best := 0.0
				for _, o := range opts[j] {
					best = max(best, w*float64(o.cap)-(sv.alphaB+mu)*float64(o.cores))
				}
				sum += best
			}
			return sum
		}
		K := float64(s.B) - pk[i+1]
		rr := float64(sv.lam) - pL[i+1]
		g := func(mu, nu float64) float64 { return mu*K + nu*rr + d(mu, nu) }
		inner := func(nu float64) (float64, float64) {
			mu := golden(0, top, 14, func(mu float64) float64 { return g(mu, nu) })
			return mu, g(mu, nu)
		}
		nu := golden(0, accMax, 14, func(nu float64) float64 { _, v := inner(nu); return v })
		mu, _ := inner(nu)
		for _, m := range [][2]float64{{mu, nu}, {mu * 0.5, nu}, {mu*1.5 + 1e-12, nu}, {mu, nu * 0.995}, {mu, min(accMax, nu*1.005)}} {
			sv.lag[i] = append(sv.lag[i], lagPair{mu: m[0], nu: m[1], d: d(m[0], m[1])})
		}
	}
}

// golden minimises a unimodal f on [lo, hi] by golden-section search.
func golden(lo, hi float64, iters int, f func(float64) float64) float64 {
	const r = 0.6180339887498949
	a, b := lo, hi
	x1, x2 := b-r*(b-a), a+r*(b-a)
	f1, f2 := f(x1), f(x2)
	for it := 0; it < iters; it++ {
		if f1 <= f2 {
			b, x2, f2 = x2, x1, f1
			x1 = b - r*(b-a)
			f1 = f(x1)
		} else {
			a, x1, f1 = x1, x2, f2
			x2 = a + r*(b-a)
			f2 = f(x2)
		}
	}
	if f1 <= f2 {
		return x1
	}
	return x2
}
