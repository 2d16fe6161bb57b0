package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/infadapter/infadapter/pkg/optimizer"
	"github.com/infadapter/infadapter/pkg/profile"
)

func init() { rootCmd.AddCommand(newSolveCmd()) }

type solveFlags struct {
	profile       string
	problem       string
	load          float64
	budget        int
	alpha, beta   float64
	minCores      int
	current       string
	maxPerReplica int
	maxReplicas   int
	json          bool
}

func newSolveCmd() *cobra.Command {
	var f solveFlags
	cmd := &cobra.Command{
		Use:   "solve",
		Short: "Pick variants, cores and traffic shares for one load (the optimiser on its own)",
		Long: `solve runs InfAdapter's exact optimiser once. It maximises

  Σ_i (l_i/λ)·acc_i − α·Σ_i cores_i/B − β·LC/max_i loadTime_i

where l_i is the load given to variant i (most accurate variants filled
first), B the core budget and LC the largest load time among variants whose
cores change. If λ cannot be served within B, it returns the allocation that
serves the most load and says infeasible.

Input is either a profile (--profile FILE or a built-in: resnet, resnet-paper;
default resnet) plus --load and the other flags, or a problem file
(--problem FILE, "-" for stdin) of this JSON shape:

  {"load": 274, "budget": 20, "alpha": 0.05, "beta": 0.001, "minCores": 2,
   "variants": [{"name": "resnet18", "accuracy": 0.69758, "loadTime": 6.44,
                 "capacity": [0, 19, 43], "current": 0}]}

where capacity[c] is the RPS within the SLO at c cores and the last entry
holds for larger c. --max-cores-per-replica and --max-replicas apply to both.`,
		Example: `  infadapter solve --load 274
  infadapter solve --profile resnet-paper --load 274 --beta 0 --json
  infadapter solve --profile my.yaml --load 120 --budget 16 --current resnet50=8
  infadapter solve --load 900 --budget 64 --max-cores-per-replica 8 --max-replicas 8
  infadapter solve --problem problem.json --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := f.problem_(cmd)
			if err != nil {
				return badInput(err)
			}
			sol, err := optimizer.Solve(p)
			if err != nil {
				return badInput(err)
			}
			out := cmd.OutOrStdout()
			if f.json {
				enc := json.NewEncoder(out)
				return enc.Encode(optimizer.ToFileSolution(sol))
			}
			return printSolution(out, p, sol)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.profile, "profile", "resnet", "profile YAML file or built-in name ("+strings.Join(profile.BuiltinNames(), ", ")+")")
	fl.StringVar(&f.problem, "problem", "", `problem JSON file ("-" = stdin); replaces --profile and the problem flags`)
	fl.Float64Var(&f.load, "load", 0, "load λ to serve (RPS), required with a profile")
	fl.IntVar(&f.budget, "budget", 20, "core budget B (whole cores)")
	fl.Float64Var(&f.alpha, "alpha", 0.05, "α, weight of the resource cost Σcores/B")
	fl.Float64Var(&f.beta, "beta", 0.001, "β, weight of the loading cost LC/max load time")
	fl.IntVar(&f.minCores, "min-cores", 2, "smallest non-zero cores per replica")
	fl.StringVar(&f.current, "current", "", "what runs now, name=cores[xreplicas],... (e.g. resnet152=20); changes pay the β loading cost")
	fl.IntVar(&f.maxPerReplica, "max-cores-per-replica", 0, "cap on one replica's cores (0 = the budget)")
	fl.IntVar(&f.maxReplicas, "max-replicas", 0, "cap on replicas per variant (0 or 1 = one replica, no horizontal scaling)")
	fl.BoolVar(&f.json, "json", false, "print the solution as JSON")
	return cmd
}

// problem_ builds the optimiser problem from the flags.
func (f *solveFlags) problem_(cmd *cobra.Command) (optimizer.Problem, error) {
	var p optimizer.Problem
	if f.problem != "" {
		for _, name := range []string{"profile", "load", "budget", "alpha", "beta", "min-cores", "current"} {
			if cmd.Flags().Changed(name) {
				return p, fmt.Errorf("--%s cannot be used with --problem (the file holds the whole problem)", name)
			}
		}
		var data []byte
		var err error
		if f.problem == "-" {
			data, err = io.ReadAll(cmd.InOrStdin())
		} else {
			data, err = os.ReadFile(f.problem)
		}
		if err != nil {
			return p, fmt.Errorf("reading problem: %w", err)
		}
		p, err = optimizer.ParseProblemJSON(data)
		if err != nil {
			return p, fmt.Errorf("problem %s: %w", f.problem, err)
		}
	} else {
		if !cmd.Flags().Changed("load") {
			return p, errors.New("--load is required (the RPS to serve), or give --problem FILE")
		}
		var errs []error
		if f.load < 0 {
			errs = append(errs, fmt.Errorf("--load must be >= 0 RPS, got %v", f.load))
		}
		if f.budget < 1 {
			errs = append(errs, fmt.Errorf("--budget must be >= 1 core, got %d", f.budget))
		} else if f.budget < f.minCores {
			errs = append(errs, fmt.Errorf("--budget %d is less than --min-cores %d: no variant could run", f.budget, f.minCores))
		}
		if f.minCores < 0 || f.alpha < 0 || f.beta < 0 {
			errs = append(errs, errors.New("--min-cores, --alpha and --beta must be >= 0"))
		}
		if len(errs) > 0 {
			return p, errors.Join(errs...)
		}
		prof, err := loadProfile(f.profile)
		if err != nil {
			return p, err
		}
		maxCores := f.budget
		if f.maxPerReplica > 0 {
			maxCores = min(maxCores, f.maxPerReplica)
		}
		vs := prof.OptimizerVariants(maxCores)
		if err := applyCurrent(vs, f.current); err != nil {
			return p, err
		}
		p = optimizer.Problem{Budget: f.budget, MinCores: f.minCores, Services: []optimizer.Service{{
			Name: prof.Name, Load: f.load, Alpha: f.alpha, Beta: f.beta, Variants: vs,
		}}}
	}
	if f.maxPerReplica < 0 || f.maxReplicas < 0 {
		return p, errors.New("--max-cores-per-replica and --max-replicas must be >= 0")
	}
	if f.maxPerReplica > 0 && f.maxPerReplica < max(1, p.MinCores) {
		return p, fmt.Errorf("--max-cores-per-replica %d is less than the minimum cores %d", f.maxPerReplica, p.MinCores)
	}
	p.MaxCoresPerReplica, p.MaxReplicas = f.maxPerReplica, f.maxReplicas
	return p, nil
}

// loadProfile reads a built-in profile by name or a YAML file by path.
func loadProfile(nameOrPath string) (profile.Profile, error) {
	if profile.IsBuiltin(nameOrPath) {
		return profile.Builtin(nameOrPath)
	}
	data, err := os.ReadFile(nameOrPath)
	if err != nil {
		return profile.Profile{}, fmt.Errorf("--profile: %q is neither a built-in (%s) nor a readable file: %w",
			nameOrPath, strings.Join(profile.BuiltinNames(), ", "), err)
	}
	return profile.Parse(data, nameOrPath)
}

// applyCurrent parses "name=cores[xreplicas],..." into the variants.
func applyCurrent(vs []optimizer.Variant, spec string) error {
	if strings.TrimSpace(spec) == "" {
		return nil
	}
	var errs []error
	for _, item := range strings.Split(spec, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(item), "=")
		if !ok {
			errs = append(errs, fmt.Errorf("--current %q: want name=cores or name=coresxreplicas", item))
			continue
		}
		coresS, repS, hasRep := strings.Cut(val, "x")
		cores, err1 := strconv.Atoi(coresS)
		reps := 1
		var err2 error
		if hasRep {
			reps, err2 = strconv.Atoi(repS)
		}
		if err1 != nil || err2 != nil || cores < 0 || reps < 1 {
			errs = append(errs, fmt.Errorf("--current %q: cores must be a whole number >= 0 and replicas >= 1", item))
			continue
		}
		found := false
		for i := range vs {
			if vs[i].Name == name {
				vs[i].Current, vs[i].CurrentReplicas, found = cores, reps, true
			}
		}
		if !found {
			var names []string
			for _, v := range vs {
				names = append(names, v.Name)
			}
			errs = append(errs, fmt.Errorf("--current: no variant %q (variants: %s)", name, strings.Join(names, ", ")))
		}
	}
	return errors.Join(errs...)
}

func printSolution(w io.Writer, p optimizer.Problem, sol optimizer.Solution) error {
	sv := p.Services[0]
	status := "feasible"
	if !sol.Feasible {
		served := 0.0
		for _, r := range sol.Services {
			served += r.Served
		}
		status = fmt.Sprintf("INFEASIBLE: only %g of %g RPS can be served within %d cores", served, sv.Load, p.Budget)
	}
	fmt.Fprintf(w, "%s\nobjective %.4f   load-weighted accuracy %.4f   cores %d/%d   load %g RPS\n\n",
		status, sol.Objective, sol.Accuracy, sol.Cores, p.Budget, sv.Load)
	if len(sol.Allocations) == 0 {
		fmt.Fprintln(w, "no variant runs")
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VARIANT\tCORES\tREPLICAS\tRPS\tSHARE\tACCURACY\t")
	for _, a := range sol.Allocations {
		acc := 0.0
		for _, v := range sv.Variants {
			if v.Name == a.Variant {
				acc = v.Accuracy
			}
		}
		share := 0.0
		if sv.Load > 0 {
			share = 100 * a.RPS / sv.Load
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%g\t%.1f%%\t%.5f\t\n", a.Variant, a.Cores, a.Replicas, a.RPS, share, acc)
	}
	return tw.Flush()
}
