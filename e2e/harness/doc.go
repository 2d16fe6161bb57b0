// Package harness brings up a real, loopback-only Kubernetes control plane
// for the end-to-end tests in e2e/: etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler and kwok (fake nodes and pods)
// v1.37.2, Knative Serving v0.48.1 (CRDs and config from the Go module
// cache, controller and webhook as subprocesses), KServe v0.20.0 (CRDs,
// config, manager as a subprocess) and a fake Knative ingress in-process.
//
// Every process is a child of the test binary, started from binaries that
// hack/testbin/build.sh and hack/knbin/build.sh cache under
// ${INFADAPTER_TESTBIN:-$HOME/.cache/infadapter/testbin}. Ports are picked
// free on 127.0.0.1, so environments on one machine do not collide, and
// Env.Stop kills every process it started by PID (SIGTERM, SIGKILL after
// about a second). Kubernetes nodes and pods are simulated by kwok: pods get
// loopback IPs from a per-environment 127.X.0.0/16 (Env.PodCIDR), so a test can bind fake model servers to them.
//
// What is faked and why (see docs/testbed.md): the kubelet/container runtime
// (kwok; nothing runs in pods), the Knative networking layer (an in-process
// reconciler marks networking.internal.knative.dev Ingresses Ready and
// records their traffic splits; nothing routes traffic), and DNS/ClusterIPs
// (there is no kube-proxy; never dial a ClusterIP).
//
// Typical use, one environment per test package (start-up takes ~15-25 s):
//
//	func TestMain(m *testing.M) { os.Exit(harness.Main(m, harness.Options{}, &env)) }
//
// or per test: env := harness.StartT(t, harness.Options{}). See README.md.
package harness
