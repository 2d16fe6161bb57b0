package localmode

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/infadapter/infadapter/pkg/backend/local"
)

// reserveFactor is how many busy nice-0 threads' worth of CPU weight the
// variant servers' cgroup gets per core of budget.
const reserveFactor = 8

// reserveCPU raises the CPU weight of the backend's private cgroup parent
// in proportion to the budget, so that the servers get up to their quota
// even when other processes compete for the machine. A quota only caps a
// cgroup; under contention a cgroup competes with the weight of ONE
// nice-0 thread by default, so on a machine busy with twenty other
// threads a "1 core" server would get a tenth of a core. Kubernetes closes
// the same gap by deriving cpu.shares from the CPU request; with
// requests = limits (the paper's setup) the allocation is then both the
// cap and the guarantee. Best effort: an error is reported, not fatal.
// (pkg/backend/local could set per-instance weights itself; until it does,
// this adapter sets the parent's.)
func reserveCPU(e local.Enforcement, budgetCores float64) (string, error) {
	_, parent, ok := strings.Cut(e.Detail, " under ")
	if !ok || !strings.HasPrefix(parent, "/") {
		return "", fmt.Errorf("cgroup parent not found in %q", e.Detail)
	}
	parent = filepath.Clean(strings.TrimSpace(parent))
	switch e.Mode {
	case local.ModeCgroupV1:
		shares := int(1024 * reserveFactor * budgetCores)
		return fmt.Sprintf("cpu.shares=%d", shares), os.WriteFile(filepath.Join(parent, "cpu.shares"), []byte(strconv.Itoa(shares)), 0o644)
	case local.ModeCgroupV2:
		w := min(10000, max(1, int(100*reserveFactor*budgetCores)))
		return fmt.Sprintf("cpu.weight=%d", w), os.WriteFile(filepath.Join(parent, "cpu.weight"), []byte(strconv.Itoa(w)), 0o644)
	}
	return "", nil
}
