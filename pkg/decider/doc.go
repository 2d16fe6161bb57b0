// Package decider defines the Decider interface shared by the simulator, the
// local loop and the Knative autoscaler, and the InfAdapter decider
// (forecast → solve → scale-down stabilisation). Pure: decisions take now as
// an argument.
package decider
