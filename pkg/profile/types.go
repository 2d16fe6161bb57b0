package profile

// CapacityRule says how capacity at an unmeasured core count is derived from
// the measured points of a variant.
type CapacityRule string

const (
	// RuleInterpolate is the default: monotone piecewise-linear interpolation
	// between measured points, 0 below the smallest measured count (a variant
	// is never run on fewer cores than were measured), and the last measured
	// slope per core extrapolated above the largest measured count, never
	// decreasing. It is chosen because measured capacity curves are concave
	// and lumpy (ResNet18 gets more than linear from 4 to 8 cores, ResNet152
	// less), so a single line misstates both ends; interpolation reproduces
	// every measured point exactly and stays monotone, which the optimiser
	// relies on.
	RuleInterpolate CapacityRule = "interpolate"
	// RulePaperLinear is the InfAdapter paper's rule (reference §1.5): a
	// least-squares line capacity = a·cores + b fitted per variant, the
	// intercept clipped to ≤ 0.99 and truncated to an integer, then
	// int(Coefficient·(a·cores + b)), floored at 0.
	RulePaperLinear CapacityRule = "paper-linear"
)

// Point is one measurement: the highest request rate (RPS) whose P99 latency
// stayed within the profile's SLO at a given number of CPU cores.
type Point struct {
	Cores int     `json:"cores"`
	RPS   float64 `json:"rps"`
}

// Variant is one model variant of a family (e.g. ResNet50 of ResNet18..152).
type Variant struct {
	Name string `json:"name"`
	// Accuracy is the variant's quality in [0,1], e.g. ImageNet top-1.
	Accuracy float64 `json:"accuracy"`
	// AccuracySource is "measured" (we ran the test set) or "published"
	// (taken from the model's authors); reports show it.
	AccuracySource string `json:"accuracySource,omitempty"`
	// LoadTimeSeconds is how long a fresh instance takes to load the model
	// before it can serve (seconds).
	LoadTimeSeconds float64 `json:"loadTimeSeconds"`
	// Memory is the instance's memory, as a Kubernetes quantity ("1.5Gi").
	Memory string `json:"memory,omitempty"`
	// Capacity holds the measured points, ascending in cores.
	Capacity []Point `json:"capacity"`
}

// Profile describes a family of variants of one logical model, measured
// against one P99 latency SLO.
type Profile struct {
	// Name of the logical model, e.g. "resnet".
	Name string `json:"name"`
	// SLOMillis is the P99 latency SLO (milliseconds) the capacities refer to.
	SLOMillis float64 `json:"sloMillis"`
	// Rule selects how capacities between measured points are derived.
	Rule CapacityRule `json:"capacityRule,omitempty"`
	// Coefficient scales every derived capacity (safety margin); the paper
	// uses 0.8 with RulePaperLinear. 0 means 1.
	Coefficient float64 `json:"capacityCoefficient,omitempty"`
	// FitCores are the measured core counts RulePaperLinear fits its line
	// on (the paper: 1, 2, 4, 8, 16); empty means every measured point.
	// Every variant must have a point at each of them.
	FitCores []int `json:"fitCores,omitempty"`
	// Source says where the numbers come from (attribution).
	Source   string    `json:"source,omitempty"`
	Variants []Variant `json:"variants"`
}
