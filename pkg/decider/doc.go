// Package decider defines the Decider interface shared by the simulator, the
// local loop and the Knative autoscaler, and the InfAdapter decider
// (forecast → solve → scale-down stabilisation), and the reactive trigger
// (Reactive) that the loop and the simulator use to decide between
// intervals when the load outgrows what runs. Pure: decisions take now as
// an argument.
package decider
