// Package autoscaler is InfAdapter's Knative autoscaler class for KServe.
//
// It has two reconcilers sharing one process (cmd/autoscaler):
//
//   - the PodAutoscaler reconciler (generated knative.dev/serving reconciler,
//     filtered by Class) owns the PAs of our class and sets everything
//     Knative needs for a Revision to become Ready: the ServerlessService
//     (or, on test beds whose loopback pod IPs never make an SKS Ready,
//     SKSReady marked directly), serviceName/metricsServiceName,
//     desiredScale/actualScale and the Active/ScaleTargetInitialized/SKSReady
//     conditions;
//   - the family reconciler, keyed "namespace/family", runs once per
//     interval per variant family (the InferenceServices that carry the
//     annotation infadapter.io/family and the InferenceGraph of the same
//     name): it observes metrics, runs the shared decider.Decider, stores the
//     plan on the InferenceGraph (annotation infadapter.io/plan) and applies
//     it level-triggered: scale up and resize first, move the Splitter
//     weights once the target revisions are Ready, scale down last. With
//     cpu-mode revision (or auto on a cluster without pods/resize) the CPU
//     changes by a new revision instead of a resize, and the weights wait
//     until that revision is Ready at the planned size; revisions Knative
//     no longer routes are scaled to 0 after the scale-to-zero grace period.
//
// All state that matters across restarts lives in the cluster (plan
// annotation, Deployment scale, pod resources, graph weights); memory holds
// only the metric history and the deciders' stabilisation counters.
package autoscaler
