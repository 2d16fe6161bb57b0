package profile

import (
	_ "embed"
	"fmt"
	"slices"
)

//go:embed builtin/resnet.yaml
var resnetYAML []byte

// BuiltinNames lists the profiles compiled into the binary.
func BuiltinNames() []string { return []string{"resnet", "resnet-paper"} }

// Builtin returns a built-in profile by name:
//
//   - "resnet": the paper's ResNet18/34/50/101/152 at P99 750 ms with this
//     project's default rule (interpolate) and the paper's 0.8 coefficient;
//   - "resnet-paper": the same measurements with the paper's own rule
//     (paper-linear fitted on 1, 2, 4, 8, 16 cores, coefficient 0.8), which
//     reproduces the paper's allocations (reference §1.5, §1.7).
//
// Both come from one embedded YAML file (builtin/resnet.yaml, with
// attribution); "resnet-paper" only overrides the rule. Each call returns a
// fresh copy.
func Builtin(name string) (Profile, error) {
	switch name {
	case "resnet", "resnet-paper":
		p, err := Parse(resnetYAML, "builtin/resnet.yaml")
		if err != nil {
			return Profile{}, fmt.Errorf("built-in profile is invalid (a bug): %w", err)
		}
		if name == "resnet-paper" {
			p.Name = "resnet-paper"
			p.Rule = RulePaperLinear
		}
		return p, nil
	}
	return Profile{}, fmt.Errorf("no built-in profile %q (built-in: %v)", name, BuiltinNames())
}

// IsBuiltin reports whether name is a built-in profile.
func IsBuiltin(name string) bool { return slices.Contains(BuiltinNames(), name) }
