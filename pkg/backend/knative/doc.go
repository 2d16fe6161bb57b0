// Package knative applies InfAdapter plans to Knative revisions and a KServe
// InferenceGraph:
//
//   - replicas through the Deployment scale subresource (Knative's Revision
//     reconciler never touches replicas after creation, so the scale belongs
//     to the PodAutoscaler owner, i.e. us);
//   - CPU per replica by in-place pod resize (the pods/resize subresource) of
//     the serving container; Revisions and their Deployments are immutable
//     to us (Knative reverts template edits), so the resize must be
//     re-applied to every pod created later;
//   - or, where in-place resize is unavailable or not wanted, CPU per
//     replica by patching the InferenceService's predictor resources
//     (SetPredictorCPU): KServe and Knative then roll out a new Revision at
//     that size, and Knative's route moves the InferenceService's traffic
//     to it only once it is Ready (latest ready revision);
//     ServesPodResize tells the two cases apart by discovery;
//   - the traffic split as integer step weights of one Splitter node of an
//     InferenceGraph (serving.kserve.io/v1alpha1).
//
// Every call is idempotent and reports whether it changed anything, so the
// caller can be level-triggered.
package knative
