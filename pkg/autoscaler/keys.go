package autoscaler

import kserveconstants "github.com/kserve/kserve/pkg/constants"

const (
	// Class is the value of autoscaling.knative.dev/class that selects this
	// autoscaler. It must not end in ".knative.dev": Knative's validating
	// webhook rejects every such class except kpa and hpa.
	Class = "infadapter.autoscaling.infadapter.io"

	// Prefix of every annotation key of ours.
	Prefix = "infadapter.io/"

	// Variant-level keys: set on each InferenceService (KServe copies them to
	// the revision template, Knative copies them to the PodAutoscaler).

	// FamilyKey names the variant family, which is also the name of the
	// InferenceGraph that routes to it (same namespace).
	FamilyKey = Prefix + "family"
	// VariantKey names the variant within the family (default: the
	// InferenceService name).
	VariantKey = Prefix + "variant"
	// AccuracyKey is the variant's accuracy in (0,1], e.g. "0.7613".
	AccuracyKey = Prefix + "accuracy"
	// CapacityKey lists measured capacity points "cores:rps,..." (highest
	// RPS within the SLO per replica at that many cores), e.g. "2:9,4:21".
	CapacityKey = Prefix + "capacity"
	// LoadTimeKey is the model load time, a Go duration ("6.8s").
	LoadTimeKey = Prefix + "load-time"

	// Family-level keys: annotations of the InferenceGraph, defaulted by the
	// config-infadapter ConfigMap (same keys without the prefix).

	SLOKey                = Prefix + "slo"
	CoreBudgetKey         = Prefix + "core-budget"
	MinCoresKey           = Prefix + "min-cores"
	MaxCoresPerReplicaKey = Prefix + "max-cores-per-replica"
	MaxReplicasKey        = Prefix + "max-replicas"
	AlphaKey              = Prefix + "alpha"
	BetaKey               = Prefix + "beta"
	IntervalKey           = Prefix + "interval"
	ForecasterKey         = Prefix + "forecaster"
	DryRunKey             = Prefix + "dry-run"
	StabilizationKey      = Prefix + "stabilization"
	// ReactiveKey is the reactive trigger's threshold (0: off).
	ReactiveKey = Prefix + "reactive"
	// ProfileKey references a ConfigMap "name" or "name/key" (default key
	// profile.yaml) in the graph's namespace holding a pkg/profile YAML;
	// variants without accuracy/capacity annotations take theirs from it.
	ProfileKey = Prefix + "profile"
	// SplitterNodeKey names the graph node whose step weights we own
	// (default "root").
	SplitterNodeKey = Prefix + "splitter-node"
	// CPUModeKey is resize, revision or auto (see CPUMode).
	CPUModeKey = Prefix + "cpu-mode"

	// Keys we write.

	// PlanKey holds the plan being applied (JSON, see StoredPlan).
	PlanKey = Prefix + "plan"
	// DryRunPlanKey holds the last plan decided in dry-run mode.
	DryRunPlanKey = Prefix + "dry-run-plan"
	// StatusKey holds a one-line human status of the family ("ok", or the
	// problems found, naming the offending keys).
	StatusKey = Prefix + "status"

	// ConfigName is the defaults ConfigMap, in the system namespace.
	ConfigName = "config-infadapter"

	// Labels KServe and Knative put on what they create (KServe's taken from
	// its own constants, so a rename there breaks the build, not the match).
	isvcLabel       = kserveconstants.InferenceServiceLabel
	ksvcLabel       = "serving.knative.dev/service"
	revisionLabel   = "serving.knative.dev/revision"
	predictorSuffix = "-" + string(kserveconstants.Predictor)
)
