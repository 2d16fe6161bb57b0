package optimizer

// Variant is one model variant as the optimiser sees it: plain numbers, no
// profile format, so the same problem can come from a profile, a JSON problem
// file or a Kubernetes annotation.
type Variant struct {
	Name     string  `json:"name"`
	Accuracy float64 `json:"accuracy"`
	// LoadTime is the model load time in seconds (the β term's LC).
	LoadTime float64 `json:"loadTime"`
	// Capacity[c] is the highest RPS one instance with c cores serves within
	// the SLO; the last entry holds for every larger c. Capacity[0] is 0.
	Capacity []float64 `json:"capacity"`
	// Current is the cores per replica the variant runs with now (0 = off).
	Current int `json:"current"`
	// CurrentReplicas is the replica count now; 0 is read as 1 when Current > 0.
	CurrentReplicas int `json:"currentReplicas,omitempty"`
}

// Service is one logical model: its variants, its predicted load and its
// weights. Several services can share one core budget.
type Service struct {
	Name string `json:"name,omitempty"`
	// Load λ is the request rate to serve (RPS), usually the forecast peak.
	Load float64 `json:"load"`
	// Alpha weighs resource cost Σc/B, Beta the loading cost LC/max loadTime.
	Alpha    float64   `json:"alpha"`
	Beta     float64   `json:"beta"`
	Variants []Variant `json:"variants"`
}

// Problem is one decision: services sharing a budget of whole cores.
type Problem struct {
	// Budget B is the total number of cores available.
	Budget int `json:"budget"`
	// MinCores is the smallest non-zero cores per replica (paper: 2).
	MinCores int `json:"minCores"`
	// MaxCoresPerReplica caps one replica's cores (e.g. a node's size).
	// 0 means Budget and, with MaxReplicas ≤ 1, no horizontal replicas.
	MaxCoresPerReplica int `json:"maxCoresPerReplica,omitempty"`
	// MaxReplicas caps replicas per variant; 0 or 1 means one replica.
	MaxReplicas int       `json:"maxReplicas,omitempty"`
	Services    []Service `json:"services"`
}

// Allocation is the decision for one running variant.
type Allocation struct {
	Service  string  `json:"service,omitempty"`
	Variant  string  `json:"variant"`
	Cores    int     `json:"cores"` // per replica
	Replicas int     `json:"replicas"`
	RPS      float64 `json:"rps"` // load assigned to the variant (all replicas)
}

// ServiceResult is the outcome for one service.
type ServiceResult struct {
	Name        string       `json:"name,omitempty"`
	Feasible    bool         `json:"feasible"`
	Objective   float64      `json:"objective"`
	Accuracy    float64      `json:"accuracy"` // load-weighted, over served load
	Cores       int          `json:"cores"`
	Served      float64      `json:"served"` // RPS served (≤ Load)
	Allocations []Allocation `json:"allocations"`
}

// Solution is the optimiser's answer. It is always actionable: when the load
// cannot be served within the budget, Feasible is false and the allocation
// serves as much load as possible.
type Solution struct {
	Feasible    bool            `json:"feasible"`
	Objective   float64         `json:"objective"`
	Accuracy    float64         `json:"accuracy"`
	Cores       int             `json:"cores"`
	Allocations []Allocation    `json:"allocations"`
	Services    []ServiceResult `json:"services,omitempty"`
}
