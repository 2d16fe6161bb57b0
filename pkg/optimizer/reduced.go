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
// # One load-cost level at a time
//
// Both bounds are loosest about the load cost still to come: a state whose
// final LC is not known yet has to be bounded at the most favourable level.
// So the search splits the problem by level (levelSvc): the subproblem at
// level ℓ charges β'·ℓ up front and allows a variant whose load time exceeds
// ℓ only to stay off or keep its current configuration. Each subproblem
// allocation is a real allocation whose true objective is at least the
// charged one, and the optimum is charged exactly at its own level, so the
// best over the levels is the optimum. Within a level the load cost is a
// constant: the bounds are exact about it, and states no longer need a
// load-cost dimension for dominance. Most levels are ruled out by their
// root bound alone (a cheap one first, psiRootAtLevel, then the level's own
// multipliers), once a good allocation is known.
//
// # The search
//
// solveReduced orders the levels by their cheap root bound. On the first
// level it solves, a beam pass (a few best states per layer, ranked by the
// bounds) and a local search over the whole problem give a good allocation,
// worth LB. Then each level not ruled out gets exact passes with a floor F:
// states and options whose bound is below F are dropped, and a pass finds
// every allocation of the level worth more than max(F, the incumbent). So
// the level is done once an allocation worth ≥ F is known; otherwise F
// drops. The first floor is just under the level's root bound (cheap: few
// states pass it), and F = LB is always enough. On the 50-variant ×
// 1,000-core benchmark three of the 51 levels are searched and the largest
// layer holds about a thousand states, where the plain DP kept millions.

// reduced holds the Lagrangian data of one service for the DP.
type reduced struct {
	U      float64       // root bound (the smaller of both families')
	UM     float64       // root bound of the first family (what optLoss is against)
	base   float64       // μλ + νB + the level's charged load cost (svc.offset)
	floor  float64       // states and options whose bound is below it are dropped
	rho    [][]float64   // per ordered variant, per entry of the DP's options
	all    []float64     // per ordered variant: ρ*_j, the best ρ over its options
	kept   []float64     // per ordered variant: the best ρ of off or its current configuration
	mu, nu float64       // the multipliers: price per unit of load, per core
	hulls  [][]hullPoint // per ordered variant: capHull of its options
	M      [][]float64   // per layer i = 0..n, per load-cost level
	// slack per ordered variant: U − (base + M_0 at the variant's own
	// level), the loss from forcing LC ≥ its load time
	slack []float64
	// second bound family (corePsi): per load price, Ψ per layer and cores
	mus  []float64
	psi  []float32 // Ψ at [(layer·len(mus) + q)·(B+1) + K]
	psiW int
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
		// The current configuration is an option too (a level's subproblem
		// may allow nothing else).
		all[j] = max(all[j], kept[j])
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

// newReduced picks the multipliers that minimise the root bound (nested
// golden-section searches of iters steps each) and returns the bound's data
// for the DP's options.
func (s *solver) newReduced(sv *svc, opts [][]option, iters int) *reduced {
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
	U += sv.offset
	rd := &reduced{U: U, base: mu*lam + nu*B + sv.offset, M: M, all: all, kept: kept, mu: mu, nu: nu, hulls: hulls,
		rho: make([][]float64, n), slack: make([]float64, n)}
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
	return rd
}

// corePsi precomputes the second family of bounds. For a few load prices
// μ_q,
//
//	Ψ_q,i(K) = the LP optimum (fractional in cores only) of
//	           Σ_{j ≥ i} max(0, a_j − μ_q)·cap_j − α/B·cores_j with ≤ K cores,
//
// where a variant whose load time exceeds sv's top load-cost level may only
// keep its current configuration or be off (a level's subproblem has one
// level, and nothing else is restricted). A state after layer i with value
// v, load L, cores k and load cost lc so far then completes to at most
//
//	v + μ_q·(λ − L) + Ψ_q,i+1(B − k) − β'·lc
//
// by load duality (Σ a_j l_j ≤ μλ + Σ (a_j − μ)⁺·cap_j) and the fractional
// knapsack over cores (exact for the LP, as each variant's hull is concave
// in cores). Unlike the first family it adapts to the state's own remaining
// cores and load, so the states away from the optimum's path get a much
// lower bound. Tables are float32, rounded up.
func (rd *reduced) corePsi(s *solver, sv *svc, hulls [][]hullPoint, muStar float64) {
	n := len(sv.order)
	m := psiMus
	rd.mus = psiMuGrid(sv, muStar)
	W := s.B + 1
	rd.psiW = W
	edge := sv.levels[len(sv.levels)-1]
	size := (n + 1) * m * W
	// The table is large (1.6 MB at 50 variants × 1,000 cores), so its
	// buffer is reused across levels and solves (the workspace pool).
	rd.psi = slices.Grow(s.psiBuf[:0], size)[:size]
	clear(rd.psi)
	s.psiBuf = rd.psi
	var segs, add []psiSeg // segs sorted by slope, descending
	for q, mu := range rd.mus {
		segs = segs[:0]
		for i := n - 1; i >= 0; i-- {
			add = psiSegs(sv, hulls, i, mu, edge, add[:0])
			for _, g := range add {
				at, _ := slices.BinarySearchFunc(segs, g.slope, func(x psiSeg, sl float64) int { return cmp.Compare(sl, x.slope) })
				segs = slices.Insert(segs, at, g)
			}
			// Ψ(K): the best K cores' worth of segments (fractional;
			// segments span whole cores, so K steps through them).
			row := rd.psi[(i*m+q)*W : (i*m+q+1)*W]
			val, K := 0.0, 0
			for _, g := range segs {
				for t := 0; t < g.dk && K+1 < W; t++ {
					K++
					val += g.slope
					row[K] = up32(val)
				}
				if K+1 >= W {
					break
				}
			}
			for K+1 < W {
				K++
				row[K] = up32(val)
			}
		}
	}
}

// psiSeg is a piece of a variant's share of Ψ: dk cores worth slope each.
type psiSeg struct {
	slope float64
	dk    int
}

// psiSegs appends ordered variant i's pieces at load price mu, for a
// load-cost bucket whose top level is edge: the slopes of its capacity hull
// (concave, so they fall), or, when it may only keep its current
// configuration, that configuration as one piece (the LP relaxes it).
func psiSegs(sv *svc, hulls [][]hullPoint, i int, mu, edge float64, out []psiSeg) []psiSeg {
	a := sv.accLam[i] - mu
	if a <= 0 {
		return out
	}
	if h := hulls[i]; len(h) > 1 && (sv.betaLT == 0 || sv.lt[i] <= edge) {
		for t := 1; t < len(h); t++ {
			dk := h[t].k - h[t-1].k
			sl := (a*(h[t].cap-h[t-1].cap) - sv.alphaB*dk) / dk
			if sl <= 0 {
				break // concave: the rest slope down further
			}
			out = append(out, psiSeg{sl, int(dk)})
		}
	} else if o := sv.cur[i]; o.cores > 0 {
		if val := a*float64(o.cap) - sv.alphaB*float64(o.cores); val > 0 {
			out = append(out, psiSeg{val / float64(o.cores), int(o.cores)})
		}
	}
	return out
}

// psiMuGrid returns the load prices of the second bound family: μ* first,
// then outwards (a state is usually cut by one of the first).
func psiMuGrid(sv *svc, muStar float64) []float64 {
	aMin, aMax := math.Inf(1), 0.0
	for _, a := range sv.accLam {
		aMin, aMax = min(aMin, a), max(aMax, a)
	}
	step := (aMax - aMin) / psiSpread
	if step <= 0 {
		step = aMax / psiSpread
	}
	mus := make([]float64, psiMus)
	for q := range mus {
		off := (q + 1) / 2
		if q%2 == 1 {
			off = -off
		}
		mus[q] = muStar + step*float64(off)
	}
	return mus
}

// psiRootAtLevel is the second family's bound on sv's subproblem at
// load-cost level l (levelSvc) with nothing decided, for the load prices
// mus: min over μ of μ·λ + (the best B cores' worth of pieces) − β'·ℓ. It
// needs no table, so it cheaply rules levels out before any is built.
func psiRootAtLevel(sv *svc, hulls [][]hullPoint, mus []float64, l, B int) float64 {
	ell := sv.levels[l]
	bound := math.Inf(1)
	var segs []psiSeg
	for _, mu := range mus {
		segs = segs[:0]
		for i := range sv.order {
			segs = psiSegs(sv, hulls, i, mu, ell, segs)
		}
		slices.SortFunc(segs, func(x, y psiSeg) int { return cmp.Compare(y.slope, x.slope) })
		val, K := 0.0, B
		for _, g := range segs {
			take := min(g.dk, K)
			val += g.slope * float64(take)
			if K -= take; K == 0 {
				break
			}
		}
		bound = min(bound, mu*float64(sv.lam)+val)
	}
	return bound - sv.betaLT*ell
}

// up32 rounds x to a float32 that is ≥ x: float32 rounds to nearest
// (≤ 6e-8 relative), and a bound must not shrink.
func up32(x float64) float32 { return float32(x + 1.2e-7*math.Abs(x) + 1e-12) }

// stateBound is the second bound family for a state whose undecided
// variants start at layer next. It returns as soon as the bound falls below
// thr (the caller prunes then), so its value is exact only above thr.
func (rd *reduced) stateBound(sv *svc, next int, c *state, B int, thr float64) float64 {
	R := float64(sv.lam - c.L)
	W := rd.psiW
	at := next*len(rd.mus)*W + B - int(c.k)
	base := c.v - sv.betaLT*c.lc
	bound := math.Inf(1)
	for _, mu := range rd.mus {
		bound = min(bound, base+mu*R+float64(rd.psi[at]))
		if bound < thr {
			return bound
		}
		at += W
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

// levelSvc returns sv's subproblem at load-cost level l: the load cost is
// charged as levels[l] up front (offset), so the DP has no load-cost
// dimension, and a variant whose load time exceeds it may only stay off or
// keep its current configuration. Every allocation of the subproblem is an
// allocation of sv whose true load cost is at most the charged one, and
// sv's optimum, at its own level, is charged exactly: so the best over the
// levels is sv's optimum. The subproblem shares sv's incumbents (inc).
func levelSvc(sv *svc, l int) *svc {
	if sv.betaLT == 0 {
		return sv // one level, nothing charged, nothing restricted
	}
	n := len(sv.order)
	ell := sv.levels[l]
	c := *sv
	c.offset = -sv.betaLT * ell
	c.betaLT = 0
	c.levels = []float64{0}
	c.full = make([][]option, n)
	c.lt = make([]float64, n)
	c.ltLvl = make([]int32, n)
	c.runs, c.rd = nil, nil
	for j := range n {
		if sv.lt[j] <= ell {
			c.full[j] = sv.full[j]
		}
	}
	return &c
}

// levelRootBounds returns, per load-cost level of sv, the first family's
// root bound of its subproblem at sv's multipliers: base + Σ_j ρ*_{j,ℓ} −
// β'·ℓ. It is cheap (no search), so it orders and skips the levels.
func levelRootBounds(sv *svc, rd *reduced) []float64 {
	out := make([]float64, len(sv.levels))
	for l, ell := range sv.levels {
		sum := rd.base
		for j := range sv.order {
			if sv.betaLT == 0 || sv.lt[j] <= ell {
				sum += rd.all[j]
			} else {
				sum += rd.kept[j]
			}
		}
		out[l] = sum - sv.betaLT*ell
	}
	return out
}

// solveReduced solves a single service exactly with reduced-cost fixing,
// one load-cost level at a time (levelSvc). It returns false (and changes
// nothing that matters) when no allocation serving λ is known, e.g. because
// λ cannot be served within the budget; the plain DP then takes over.
func (s *solver) solveReduced(sv *svc, record func(int)) bool {
	lb := feasibleLB(sv)
	if math.IsInf(lb, -1) {
		return false
	}
	const tol = 1e-9
	// known is the best objective of an allocation found so far.
	known := func() float64 {
		v := feasibleLB(sv)
		if e := sv.table[s.B]; e.L == sv.lam {
			v = max(v, e.obj)
		}
		return v
	}
	// Order the levels by a cheap root bound; the best is solved first, so
	// that it sets the floor for the rest, most of which it then rules out.
	rootRd := s.newReduced(sv, s.dpOptions(sv), rootSearchIters)
	ub := levelRootBounds(sv, rootRd)
	mus := psiMuGrid(sv, rootRd.mu)
	var lvls []int
	for l := range sv.levels {
		if ub[l] >= lb-tol {
			ub[l] = min(ub[l], psiRootAtLevel(sv, rootRd.hulls, mus, l, s.B))
			lvls = append(lvls, l)
		}
	}
	slices.SortStableFunc(lvls, func(x, y int) int { return cmp.Compare(ub[y], ub[x]) })
	beamDone := reducedBeam == 0
	for _, l := range lvls {
		if ub[l] < lb-tol {
			break // sorted: no other level can beat lb
		}
		lsv := levelSvc(sv, l)
		rd := s.newReduced(lsv, s.dpOptions(lsv), levelSearchIters)
		rd.UM = rd.U
		if rd.U < lb-tol {
			continue // ruled out by the level's own multipliers
		}
		rd.corePsi(s, lsv, rd.hulls, rd.mu)
		lsv.rd = rd
		root := state{v: lsv.offset}
		rd.U = min(rd.U, ub[l], rd.stateBound(lsv, 0, &root, s.B, math.Inf(-1)))
		if math.IsNaN(rd.U) || math.IsInf(rd.U, 0) {
			return false
		}
		if rd.U < lb-tol {
			continue
		}
		rd.floor = lb - tol
		if !beamDone {
			beamDone = true
			// A beam pass over the best level finds a good allocation
			// cheaply; local search over all of sv polishes it.
			sv.runs = append(sv.runs, s.dp(lsv, reducedBeam))
			record(len(sv.runs) - 1)
			if e := sv.table[s.B]; e.L == sv.lam {
				lb = max(lb, e.obj)
				lb = max(lb, s.polish(sv, e))
			}
		}
		// Exact passes with a floor F: a pass finds every allocation of
		// the level worth more than max(F, the incumbent), so the level is
		// done once an allocation worth ≥ F is known. The first floor is
		// just under the level's bound (cheap: few states pass it); each
		// miss lowers it, down to lb at worst.
		T := max((rd.U-lb)/firstTDiv, tol)
		for {
			rd.floor = max(lb-tol, rd.U-T)
			sv.runs = append(sv.runs, s.dp(lsv, 0))
			record(len(sv.runs) - 1)
			lb = max(lb, known())
			if rd.floor <= lb {
				break
			}
			T *= 4
		}
	}
	return true
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
	// psiMus sizes the second bound family (load prices): more is tighter
	// per state and costlier to build.
	psiMus = 8
	// psiSpread sets the load prices' spacing: (max − min accuracy/λ)/psiSpread.
	psiSpread = 48.0
	// rootSearchIters and levelSearchIters are the golden-section steps of
	// the multiplier searches: for the whole service (it orders the
	// levels) and for each level's subproblem that is not ruled out.
	rootSearchIters, levelSearchIters = 36, 24
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
