// Package oip holds the wire types of the two inference REST protocols
// InfAdapter speaks, and their parsing:
//
//   - the Open Inference Protocol v2 (KServe v2 / Triton REST):
//     GET  /v2/health/live, /v2/health/ready, /v2, /v2/models/{name}[/versions/{v}],
//     GET  /v2/models/{name}[/versions/{v}]/ready,
//     POST /v2/models/{name}[/versions/{v}]/infer;
//   - TensorFlow Serving REST:
//     POST /v1/models/{name}[/versions/{v}]:predict, GET /v1/models/{name}.
//
// The dispatcher uses ParsePath/Route.WithModel to address a logical model and
// rewrite the name to a variant's; the model server and the load generator
// use the request/response types. Decoders enforce a body size limit and
// return *RequestError values carrying the HTTP status to answer with, so a
// malformed request is always a 4xx with a message naming the bad field,
// never a panic. The package does no I/O beyond reading the readers it is
// handed.
package oip
