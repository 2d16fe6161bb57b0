package optimizer

import (
	"cmp"
	"math"
	"slices"
)

// Reduced-cost fixing for one service (the "core" method of exact knapsack
// solvers, e.g. Pisinger's for the multiple-choice knapsack).
//
// # The bound
//
// For a feasible configuration x (capacities cap_j, cores k_j, Σ cap_j ≥ λ)
// the greedy fill is the optimum of the LP max Σ a_j·l_j s.t. 0 ≤ l_j ≤
// cap_j, Σ l_j = λ, with a_j = acc_j/λ. By weak duality, for every real μ
// (a price per unit of load) and every ν ≥ 0 (a price per core),
//
//	V(x) ≤ μ·λ + ν·B + Σ_j ρ_j(x_j) − β'·LC(x),
//	ρ_j(o) = max(0, a_j − μ)·cap(o) − (α/B + ν)·cores(o),   ρ_j(off) = 0,
//
// because Σ a_j l_j = μ·Σ l_j + Σ (a_j − μ)·l_j ≤ μλ + Σ (a_j − μ)⁺·cap_j and
// ν·(B − Σ k_j) ≥ 0; β' = β/max load time. The load cost is what makes the
// bound tight or loose (β'·LC is often larger than the integrality gap), so
// it is kept exactly: LC(x) is one of the levels ℓ (0 or a load time), and
// at level ℓ a variant whose load time exceeds ℓ can only be off or keep its
// current configuration. With ρ*_{j,ℓ} the best ρ_j allowed at level ℓ, a
// partial allocation of the variants before i, with load cost lc so far and
// Σ ρ_j(x_j) = R, can complete to at most
//
//	μλ + νB + R + M_i(lc),   M_i(lc) = max_{ℓ ≥ lc} (Σ_{j ≥ i} ρ*_{j,ℓ} − β'·ℓ),
//
// since its final LC is some level ℓ ≥ lc and every later choice is allowed
// at that level. M is a small table (layers × levels), so the bound costs
// O(1) per DP state. The root bound U is this at i = 0, lc = 0.
//
// # Why the search stays exact
//
// Given any allocation worth LB, no state whose bound is below LB can lead
// to anything better, so the DP drops it; likewise an option whose own loss
// against the root bound (ρ*_j − ρ_j(o), plus the drop in M_0 from forcing
// LC ≥ its load time) already exceeds U − LB. Dominance pruning stays valid:
// a dominating state's completion is worth at least as much, hence its
// bound is at least LB too.
//
// The multipliers come from minimising U (convex in (μ, ν)) by nested
// golden-section search over the variants' capacity hulls; any multipliers
// give a valid bound, the best ones the tightest. A second family of bounds
// (corePsi) adapts the load price to each state and solves the core budget
// exactly as an LP; each state gets the smaller of the two.
//
// # The search
//
// solveReduced runs a beam pass (a few best states per layer, ranked by the
// bounds) and polishes its best allocation by local search: that gives LB.
// Then exact passes with a floor F: states and options whose bound is below
// F are dropped. If a pass finds an allocation worth ≥ F, it is optimal: a
// better one would have had every bound on its path above F and been found.
// The first floor is just under U (cheap: few states pass it); each miss
// lowers it, and F = LB is always enough. On the 50-variant × 1,000-core
// benchmark this keeps a few thousand states per layer where the plain DP
// kept millions.

// reduced holds the Lagrangian data of one service for the DP.
type reduced struct {
	U     float64     // root bound (the smaller of both families')
	UM    float64     // root bound of the first family (what optLoss is against)
	base  float64     // μλ + νB
	floor float64     // states and options whose bound is below it are dropped
	rho   [][]float64 // per ordered variant, per entry of the DP's options
	all   []float64   // per ordered variant: ρ*_j, the best ρ over its options
	M     [][]float64 // per layer i = 0..n, per load-cost level
	// slack per ordered variant: U − (base + M_0 at the variant's own
	// level), the loss from forcing LC ≥ its load time
	slack []float64
	// second bound family (corePsi): per load price, Ψ per layer and cores
	mus       []float64
	psi       []float32 // Ψ at [((layer·len(mus) + q)·(B+1) + K)·nb + bucket]
	psiW, nb  int
	bucketLvl []int32   // per bucket: its top level (index into levels)
	bucketMin []float64 // per bucket: the smallest load time it covers
}

// hullPoint is a vertex of a variant's upper concave (cores, capacity) hull.
type hullPoint struct{ k, cap float64 }

// capHull returns the upper concave hull of the origin and the options,
// which is where max A·cap − C·k (A, C ≥ 0) is attained.
func capHull(opts []option) []hullPoint {
	h := []hullPoint{{0, 0}}
	for _, o := range opts { // ascending cores, increasing capacity
		p := hullPoint{float64(o.cores), float64(o.cap)}
		for len(h) >= 2 {
			a, b := h[len(h)-2], h[len(h)-1]
			if (b.cap-a.cap)*(p.k-a.k) <= (p.cap-a.cap)*(b.k-a.k) {
				h = h[:len(h)-1]
				continue
			}
			break
		}
		h = append(h, p)
	}
	return h
}

// rhoStar returns, for multipliers (mu, nu), per ordered variant the best
// ρ over all its options (all) and over off or its current configuration
// (kept), using the hulls.
func (s *solver) rhoStar(sv *svc, hulls [][]hullPoint, mu, nu float64, all, kept []float64) {
	c := sv.alphaB + nu
	for j, h := range hulls {
		a := sv.accLam[j] - mu
		all[j], kept[j] = 0, 0
		if a <= 0 {
			continue
		}
		for _, p := range h[1:] {
			all[j] = max(all[j], a*p.cap-c*p.k)
		}
		if o := sv.cur[j]; o.cores > 0 {
			kept[j] = max(0, a*float64(o.cap)-c*float64(o.cores))
		}
	}
}

// levelTable fills M (see reduced) from per-variant ρ* values.
func levelTable(sv *svc, all, kept []float64, M [][]float64) {
	n, nl := len(sv.order), len(sv.levels)
	for l := range nl {
		M[n][l] = -sv.betaLT * sv.levels[l]
	}
	sum := make([]float64, nl)
	for i := n - 1; i >= 0; i-- {
		for l := range nl {
			if sv.lt[i] <= sv.levels[l] || sv.betaLT == 0 {
				sum[l] += all[i]
			} else {
				sum[l] += kept[i]
			}
		}
		run := math.Inf(-1)
		for l := nl - 1; l >= 0; l-- {
			run = max(run, sum[l]-sv.betaLT*sv.levels[l])
			M[i][l] = run
		}
	}
}

// newReduced picks the multipliers that minimise the root bound and
// returns the bound's data for the DP's options.
func (s *solver) newReduced(sv *svc, opts [][]option) *reduced {
	n, nl := len(sv.order), len(sv.levels)
	hulls := make([][]hullPoint, n)
	aMax, aMin, effMax, wMax := 0.0, math.Inf(1), 0.0, 0.0
	for j := range n {
		hulls[j] = capHull(sv.full[j])
		aMax = max(aMax, sv.accLam[j])
		aMin = min(aMin, sv.accLam[j])
		for _, p := range hulls[j][1:] {
			effMax = max(effMax, p.cap/p.k)
			if p.cap > 0 {
				wMax = max(wMax, p.k/p.cap)
			}
		}
	}
	lam, B := float64(sv.lam), float64(s.B)
	all, kept := make([]float64, n), make([]float64, n)
	M := make([][]float64, n+1)
	for i := range M {
		M[i] = make([]float64, nl)
	}
	// root evaluates U = μλ + νB + M_0(0) without building the whole
	// table: with the variants by load time, level l adds all_j − kept_j
	// for every variant whose load time is ≤ ℓ_l.
	byLT := make([]int, n)
	for j := range byLT {
		byLT[j] = j
	}
	slices.SortFunc(byLT, func(x, y int) int { return cmp.Compare(sv.lt[x], sv.lt[y]) })
	root := func(mu, nu float64) float64 {
		s.rhoStar(sv, hulls, mu, nu, all, kept)
		if sv.betaLT == 0 {
			sum := 0.0
			for j := range n {
				sum += all[j]
			}
			return mu*lam + nu*B + sum
		}
		sum := 0.0
		for j := range n {
			sum += kept[j]
		}
		best, t := math.Inf(-1), 0
		for _, ell := range sv.levels {
			for t < n && sv.lt[byLT[t]] <= ell {
				sum += all[byLT[t]] - kept[byLT[t]]
				t++
			}
			best = max(best, sum-sv.betaLT*ell)
		}
		return mu*lam + nu*B + best
	}
	nuHi := aMax * effMax
	muHi := aMax
	muLo := min(0, aMin-(sv.alphaB+nuHi)*wMax)
	const iters = 36
	inner := func(mu float64) (float64, float64) {
		nu := golden(0, nuHi, iters, func(nu float64) float64 { return root(mu, nu) })
		return nu, root(mu, nu)
	}
	mu := golden(muLo, muHi, iters, func(mu float64) float64 { _, v := inner(mu); return v })
	nu, U := inner(mu)
	// The ends of the ranges are candidates too (golden never evaluates them).
	for _, c := range [][2]float64{{mu, 0}, {muHi, 0}, {0, 0}} {
		if v := root(c[0], c[1]); v < U {
			mu, nu, U = c[0], c[1], v
		}
	}
	U = root(mu, nu) // leaves all and kept at the chosen multipliers
	levelTable(sv, all, kept, M)
	rd := &reduced{U: U, base: mu*lam + nu*B, M: M, all: all, rho: make([][]float64, n), slack: make([]float64, n)}
	c := sv.alphaB + nu
	for j := range n {
		a := max(0, sv.accLam[j]-mu)
		rho := make([]float64, len(opts[j]))
		for oi, o := range opts[j] {
			rho[oi] = a*float64(o.cap) - c*float64(o.cores)
		}
		rd.rho[j] = rho
		l, _ := slices.BinarySearch(sv.levels, sv.lt[j])
		if sv.betaLT == 0 {
			l = 0
		}
		rd.slack[j] = U - (rd.base + M[0][l])
	}
	rd.corePsi(s, sv, hulls, mu)
	return rd
}

// corePsi precomputes the second family of bounds. For a few load prices
// μ_q and a few load-cost levels ℓ_b ("buckets"),
//
//	Ψ_q,i,b(K) = the LP optimum (fractional in cores only) of
//	             Σ_{j ≥ i} max(0, a_j − μ_q)·cap_j − α/B·cores_j with ≤ K cores,
//
// where a variant whose load time exceeds ℓ_b may only keep its current
// configuration (a 0/1 item) or be off. A state after layer i with value v,
// load L, cores k and load cost lc so far then completes to at most
//
//	v + μ_q·(λ − L) + max_b [Ψ_q,i+1,b(B − k) − β'·max(lc, lowest level above ℓ_{b−1})]
//
// over the buckets with ℓ_b ≥ lc: the final LC is a level ≥ lc, it lies in
// some bucket (ℓ_{b−1}, ℓ_b], every later choice is allowed at ℓ_b, and the
// load duality and the fractional knapsack over cores (exact for the LP, as
// each variant's hull is concave in cores) do the rest. Unlike the root
// bound it adapts to the state's own remaining cores and load, and it keeps
// the load cost still to come, so the states away from the optimum's path
// get a much lower bound. Tables are float32, rounded up.
func (rd *reduced) corePsi(s *solver, sv *svc, hulls [][]hullPoint, muStar float64) {
	n, nl := len(sv.order), len(sv.levels)
	aMin, aMax := math.Inf(1), 0.0
	for j := range n {
		aMin, aMax = min(aMin, sv.accLam[j]), max(aMax, sv.accLam[j])
	}
	const m = psiMus
	step := (aMax - aMin) / psiSpread
	if step <= 0 {
		step = aMax / psiSpread
	}
	// μ* first, then outwards: a state is usually cut by one of the first.
	for q := range m {
		off := (q + 1) / 2
		if q%2 == 1 {
			off = -off
		}
		rd.mus = append(rd.mus, muStar+step*float64(off))
	}
	// Buckets: up to 8 levels, always including the top one.
	const maxBuckets = psiBuckets
	rd.bucketLvl = rd.bucketLvl[:0]
	if nl <= maxBuckets {
		for l := range nl {
			rd.bucketLvl = append(rd.bucketLvl, int32(l))
		}
	} else {
		for b := 1; b <= maxBuckets; b++ {
			rd.bucketLvl = append(rd.bucketLvl, int32(b*(nl-1)/maxBuckets))
		}
	}
	nb := len(rd.bucketLvl)
	W := s.B + 1
	rd.psiW, rd.nb = W, nb
	// per bucket: the smallest load cost a final LC in it can have
	rd.bucketMin = make([]float64, nb)
	for b := range nb {
		lo := 0
		if b > 0 {
			lo = int(rd.bucketLvl[b-1]) + 1
		}
		rd.bucketMin[b] = sv.levels[lo]
	}
	size := (n + 1) * m * nb * W
	// The table is large (13 MB at 50 variants × 1,000 cores), so its
	// buffer is reused across solves (the solver's workspace pool).
	rd.psi = slices.Grow(s.psiBuf[:0], size)[:size]
	clear(rd.psi)
	s.psiBuf = rd.psi
	type seg struct {
		slope float64
		dk    int
	}
	var segs []seg // sorted by slope, descending
	for q, mu := range rd.mus {
		for b, bl := range rd.bucketLvl {
			edge := sv.levels[bl]
			segs = segs[:0]
			for i := n - 1; i >= 0; i-- {
				a := sv.accLam[i] - mu
				var add []seg
				if a > 0 && (sv.betaLT == 0 || sv.lt[i] <= edge) {
					h := hulls[i]
					for t := 1; t < len(h); t++ {
						dk := h[t].k - h[t-1].k
						sl := (a*(h[t].cap-h[t-1].cap) - sv.alphaB*dk) / dk
						if sl <= 0 {
							break // concave: the rest slope down further
						}
						add = append(add, seg{sl, int(dk)})
					}
				} else if o := sv.cur[i]; a > 0 && o.cores > 0 {
					if val := a*float64(o.cap) - sv.alphaB*float64(o.cores); val > 0 {
						add = append(add, seg{val / float64(o.cores), int(o.cores)})
					}
				}
				for _, g := range add {
					at, _ := slices.BinarySearchFunc(segs, g.slope, func(x seg, sl float64) int { return cmp.Compare(sl, x.slope) })
					segs = slices.Insert(segs, at, g)
				}
				// Ψ(K): the best K cores' worth of segments (fractional;
				// segments span whole cores, so K steps through them).
				row := rd.psi[(i*m+q)*W*nb+b:]
				val, K := 0.0, 0
				for _, g := range segs {
					for t := 0; t < g.dk && K+1 < W; t++ {
						K++
						val += g.slope
						row[K*nb] = up32(val)
					}
					if K+1 >= W {
						break
					}
				}
				for K+1 < W {
					K++
					row[K*nb] = up32(val)
				}
			}
		}
	}
}

// up32 rounds x to a float32 that is ≥ x: float32 rounds to nearest
// (≤ 6e-8 relative), and a bound must not shrink.
func up32(x float64) float32 { return float32(x + 1.2e-7*math.Abs(x) + 1e-12) }

// stateBound is the second bound family for a state whose undecided
// variants start at layer next. It returns as soon as the bound falls below
// thr (the caller prunes then), so its value is exact only above thr.
func (rd *reduced) stateBound(sv *svc, next int, c *state, B int, thr float64) float64 {
	R := float64(sv.lam - c.L)
	nb, W := rd.nb, rd.psiW
	// the first bucket that can hold the final LC (≥ lc)
	b0 := 0
	for b0 < nb-1 && rd.bucketLvl[b0] < c.lvl {
		b0++
	}
	at := (next*len(rd.mus)*W+B-int(c.k))*nb + b0
	bound := math.Inf(1)
	for _, mu := range rd.mus {
		row := rd.psi[at : at+nb-b0]
		best := float64(row[0]) - sv.betaLT*c.lc
		for b := 1; b < len(row); b++ {
			best = max(best, float64(row[b])-sv.betaLT*rd.bucketMin[b0+b])
		}
		bound = min(bound, c.v+mu*R+best)
		if bound < thr {
			return bound
		}
		at += W * nb
	}
	return bound
}

// optLoss is how far below the root bound UM any allocation using option oi of
// ordered variant j must be (the option's ρ loss, plus the slack of forcing
// LC up to its load time when it changes the variant).
func (rd *reduced) optLoss(sv *svc, j, oi int, o option) float64 {
	if cc := sv.curCfgs[j]; int(o.c) == cc[0] && int(o.r) == cc[1] {
		return 0 // keeping the current configuration: never eliminated
	}
	return rd.all[j] - rd.rho[j][oi] + rd.slack[j]
}

// feasibleLB is the best objective of a complete allocation (serving λ)
// recorded in sv.inc so far, or −Inf.
func feasibleLB(sv *svc) float64 {
	lb := math.Inf(-1)
	for _, e := range sv.inc {
		if e.L == sv.lam {
			lb = max(lb, e.obj)
		}
	}
	return lb
}

// solveReduced solves a single service exactly with reduced-cost fixing.
// It returns false (and changes nothing that matters) when no allocation
// serving λ is known, e.g. because λ cannot be served within the budget;
// the plain DP then takes over.
func (s *solver) solveReduced(sv *svc, record func(int)) bool {
	lb0 := feasibleLB(sv)
	if math.IsInf(lb0, -1) {
		return false
	}
	rd := s.newReduced(sv, s.dpOptions(sv))
	sv.rd = rd
	// The second family's bound at the root (nothing decided) is often
	// tighter than U; either is a valid bound on the optimum.
	root := state{}
	rd.UM = rd.U
	rd.U = min(rd.U, rd.stateBound(sv, 0, &root, s.B, math.Inf(-1)))
	defer func() { sv.rd = nil }()
	const tol = 1e-9
	// A beam pass over the options that can reach lb0 at all finds a good
	// allocation cheaply; the exact pass then keeps only what can reach it.
	// Whatever the exact pass returns is optimal: every allocation worth
	// more than the floor keeps a bound above the floor on its whole path
	// (see the comment at the top), so it is found.
	rd.floor = lb0 - tol
	if reducedBeam > 0 {
		sv.runs = append(sv.runs, s.dp(sv, reducedBeam))
		record(len(sv.runs) - 1)
		if e := sv.table[s.B]; e.L == sv.lam {
			rd.floor = max(rd.floor, e.obj-tol)
			// Polish it by local search: the closer the floor is to the
			// optimum, the fewer states the exact pass keeps.
			if obj := s.polish(sv, e); obj > e.obj {
				rd.floor = max(rd.floor, obj-tol)
			}
		}
	}
	// Exact passes. A floor just under U is cheap (few states pass it) and
	// its result is certified optimal when it reaches the floor (see the
	// comment at the top); otherwise the floor drops, at worst to the best
	// allocation known, which is always certified.
	lb := rd.floor + tol
	if math.IsNaN(rd.U) || math.IsInf(rd.U, 0) {
		return false
	}
	T := max((rd.U-lb)/firstTDiv, tol)
	for pass := 0; pass < 64; pass++ {
		rd.floor = max(lb-tol, rd.U-T)
		sv.runs = append(sv.runs, s.dp(sv, 0))
		record(len(sv.runs) - 1)
		e := sv.table[s.B]
		if e.L == sv.lam {
			if e.obj >= rd.floor {
				return true
			}
			lb = max(lb, e.obj)
		}
		if rd.floor <= lb-tol {
			return false // unreachable: lb's own allocation was in reach
		}
		T *= 4
	}
	return false
}

// dpOptions returns each ordered variant's options as the DP sees them (see
// dpOptionsExtra).
func (s *solver) dpOptions(sv *svc) [][]option {
	opts, _ := s.dpOptionsExtra(sv)
	return opts
}

// dpOptionsExtra returns each ordered variant's options as the DP sees
// them: the Pareto set, plus the current configuration when the Pareto set
// lacks it (it may be worth keeping for having no load cost), and the index
// of the current configuration among them (−1 if none).
func (s *solver) dpOptionsExtra(sv *svc) ([][]option, []int) {
	n := len(sv.order)
	opts := make([][]option, n)
	extra := make([]int, n)
	for i := range n {
		opts[i] = sv.full[i]
		extra[i] = -1
		if c := sv.cur[i]; c.cores > 0 {
			extra[i] = slices.Index(sv.full[i], c)
			if extra[i] < 0 {
				opts[i] = append(slices.Clip(sv.full[i]), c)
				extra[i] = len(opts[i]) - 1
			}
		}
	}
	return opts, extra
}

// Tuning of the reduced-cost search. None of these affects exactness, only
// speed; they were chosen on seeded 50-variant × 1,000-core instances with
// replicas (docs/benchmarks.md).
const (
	// reducedBeam is the width of the beam pass that finds the first
	// incumbent (its quality matters most: the exact pass keeps every state
	// whose bound is above it).
	reducedBeam = 16
	// psiMus and psiBuckets size the second bound family (load prices ×
	// load-cost buckets): more is tighter per state and costlier to build.
	psiMus, psiBuckets = 8, 8
	// psiSpread sets the load prices' spacing: (max − min accuracy/λ)/psiSpread.
	psiSpread = 48.0
	// firstTDiv sets the first exact pass's floor at U − (U − lb)/firstTDiv.
	firstTDiv = 8.0
)

// polish improves a complete allocation by first-improvement local search:
// change one variant's option (or switch it off), or two variants' options
// within a few steps of their current ones, while the result serves λ
// within the budget. It returns the best objective found; only the value is
// used (as a floor for the exact pass), the exact pass finds the allocation.
func (s *solver) polish(sv *svc, e entry) float64 {
	n := len(sv.order)
	opts := s.dpOptions(sv)
	chosen, _ := s.reconstruct(sv, e)
	cur := make([]int, n) // option index per ordered variant, −1 = off
	for i := range n {
		cur[i] = -1
		if chosen[i].cores > 0 {
			cur[i] = slices.Index(opts[i], chosen[i])
		}
	}
	eval := func(x []int) (float64, bool) {
		var L int64
		var k int32
		v, lc := 0.0, 0.0
		for i, oi := range x {
			if oi < 0 {
				continue
			}
			o := opts[i][oi]
			k += o.cores
			add := min(o.cap, sv.lam-L)
			L += add
			v += sv.accLam[i]*float64(add) - sv.alphaB*float64(o.cores)
			if cc := sv.curCfgs[i]; int(o.c) != cc[0] || int(o.r) != cc[1] {
				lc = max(lc, sv.lt[i])
			}
		}
		return v - sv.betaLT*lc, L == sv.lam && int(k) <= s.B
	}
	best, ok := eval(cur)
	if !ok {
		return math.Inf(-1)
	}
	// near returns the option indices within d steps of x's (−1 = off; off
	// is near every option, and the first d options are near off).
	near := func(i, d int) []int {
		out := []int{-1}
		lo, hi := 0, min(len(opts[i]), d)
		if cur[i] >= 0 {
			lo, hi = max(0, cur[i]-d), min(len(opts[i]), cur[i]+d+1)
		}
		for oi := lo; oi < hi; oi++ {
			out = append(out, oi)
		}
		return out
	}
	try := func(x []int) bool {
		if v, ok := eval(x); ok && v > best+1e-12 {
			best = v
			return true
		}
		return false
	}
	for round := 0; round < 32; round++ {
		improved := false
		for i := 0; i < n && !improved; i++ {
			old := cur[i]
			for oi := -1; oi < len(opts[i]) && !improved; oi++ {
				if oi == old {
					continue
				}
				cur[i] = oi
				if improved = try(cur); !improved {
					cur[i] = old
				}
			}
		}
		for i := 0; i < n && !improved; i++ {
			if cur[i] < 0 {
				continue // one of the pair is running
			}
			oldI := cur[i]
			for _, a := range near(i, 4) {
				for j := 0; j < n && !improved; j++ {
					if j == i {
						continue
					}
					oldJ := cur[j]
					for _, b := range near(j, 4) {
						cur[i], cur[j] = a, b
						if improved = try(cur); improved {
							break
						}
					}
					if !improved {
						cur[i], cur[j] = oldI, oldJ
					}
				}
				if improved {
					break
				}
			}
		}
		if !improved {
			break
		}
	}
	return best
}
