package main

import (
	_ "github.com/google/go-cmp/cmp"
	_ "github.com/kserve/kserve/pkg/apis/serving/v1beta1"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/schollz/progressbar/v3"
	_ "github.com/spf13/cobra"
	_ "github.com/yalue/onnxruntime_go"
	_ "gonum.org/v1/gonum/mat"
	_ "k8s.io/client-go/kubernetes"
	_ "k8s.io/utils/clock"
	_ "knative.dev/pkg/injection/sharedmain"
	_ "knative.dev/serving/pkg/client/injection/reconciler/autoscaling/v1alpha1/podautoscaler"
	_ "sigs.k8s.io/yaml"
)

func main() {}
