#!/usr/bin/env python3
"""Export torchvision's ResNet18/34/50/101/152 to ONNX with RANDOM weights.

An optional, developer-run step (`make resnet-models`), not part of CI: the
five files are ~600 MB together and the export takes about a minute on an
idle 2-core machine (several under load), so they are written to the user's
cache directory, never to the repository. See README.md beside this file.

Needs Debian's python3-torch and python3-torchvision (0.14.1):

    apt-get install -y python3-torchvision libopenblas0-pthread
    /usr/bin/python3 hack/export-resnet/export_resnet.py [OUT_DIR]

OUT_DIR defaults to ${XDG_CACHE_HOME:-$HOME/.cache}/infadapter/models/resnet.

Why random weights: no package reachable from this project's registries
ships ImageNet weights (torchvision's metadata has only download URLs), and
the project downloads nothing else. The networks' compute, memory and
latency are those of the real architectures; their predictions are
meaningless. The accuracy written into profile.yaml is torchvision's
published ImageNet-1K top-1 of the IMAGENET1K_V1 weights, read from the
installed torchvision's metadata and marked `accuracySource: published`:
InfAdapter plans with it, and every place that shows it says "published,
not measured".

Every graph: input "input" float32 [N,3,224,224], raw RGB / 255 in [0,1]
(ImageNet mean/std normalisation is baked into the graph, as in the
Fashion-MNIST family); output "logits" float32 [N,1000]; dynamic batch;
opset 13. Weights come from torch.manual_seed(SEED) before each model is
built (SEED=0 by default), so an export is reproducible.
"""
import json
import os
import sys
import time

import torch
import torch.nn as nn
import torchvision
from torchvision import models

SEED = int(os.environ.get("SEED", "0"))
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)

# Cheapest first (the order profile.yaml lists them in). The expected
# published top-1 accuracies (torchvision IMAGENET1K_V1) are cross-checked
# against the installed torchvision's metadata.
LADDER = [
    ("resnet18", models.resnet18, models.ResNet18_Weights.IMAGENET1K_V1, 69.758),
    ("resnet34", models.resnet34, models.ResNet34_Weights.IMAGENET1K_V1, 73.314),
    ("resnet50", models.resnet50, models.ResNet50_Weights.IMAGENET1K_V1, 76.130),
    ("resnet101", models.resnet101, models.ResNet101_Weights.IMAGENET1K_V1, 77.374),
    ("resnet152", models.resnet152, models.ResNet152_Weights.IMAGENET1K_V1, 78.312),
]

# The SLO the family's profile refers to: the paper's P99 750 ms. ResNet152
# takes ~215 ms per image on one core here, so tighter SLOs leave it almost
# no capacity.
SLO_MILLIS = 750


class Normalised(nn.Module):
    """ImageNet normalisation in the graph: input is pixel / 255."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(STD).view(1, 3, 1, 1))

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def published_top1(weights, expected):
    got = weights.meta["_metrics"]["ImageNet-1K"]["acc@1"]
    if abs(got - expected) > 1e-9:
        sys.exit(f"{weights}: torchvision says top-1 {got}, expected {expected}")
    return got


def profile_yaml(rows):
    """The family's metadata file: order, published accuracy, no capacity
    (`infadapter profile --family DIR` measures that)."""
    lines = [
        "# ResNet family, RANDOM weights (hack/export-resnet/export_resnet.py).",
        "# accuracy: torchvision %s's published ImageNet-1K top-1 of the" % torchvision.__version__,
        "# IMAGENET1K_V1 weights -- published, NOT measured: these networks have",
        "# random weights and their predictions are meaningless. Capacities are",
        "# not part of this file: measure them on your machine with",
        "#   infadapter profile --family DIR --cores 1,2 --slo 750ms --out FILE",
        "name: resnet",
        "sloMillis: %d" % SLO_MILLIS,
        "capacityRule: interpolate",
        "source: 'accuracy: torchvision IMAGENET1K_V1 top-1 (published, not measured);"
        " weights random (seed %d), exported by hack/export-resnet/export_resnet.py'" % SEED,
        "variants:",
    ]
    for name, acc in rows:
        lines += ["- name: %s" % name,
                  "  accuracy: %.5f" % (acc / 100),
                  "  accuracySource: published",
                  "  loadTimeSeconds: 0"]
    return "\n".join(lines) + "\n"


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "infadapter", "models", "resnet")
    only = set(sys.argv[2:])
    os.makedirs(out, exist_ok=True)
    torch.set_num_threads(int(os.environ.get("THREADS", "1")))
    rows = []
    for name, build, weights, expected in LADDER:
        acc = published_top1(weights, expected)
        rows.append((name, acc))
        if only and name not in only:
            continue
        t0 = time.time()
        torch.manual_seed(SEED)
        m = Normalised(build(weights=None)).eval()
        params = sum(p.numel() for p in m.parameters())
        path = os.path.join(out, name + ".onnx")
        tmp = path + ".tmp"
        with torch.no_grad():
            torch.onnx.export(m, torch.zeros(1, 3, 224, 224), tmp, opset_version=13,
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
        os.replace(tmp, path)
        print(json.dumps({"variant": name, "params": params, "bytes": os.path.getsize(path),
                          "publishedTop1": acc, "seed": SEED,
                          "seconds": round(time.time() - t0, 1), "file": path}), flush=True)
    with open(os.path.join(out, "profile.yaml"), "w") as f:
        f.write(profile_yaml(rows))
    print(json.dumps({"profile": os.path.join(out, "profile.yaml")}), flush=True)


if __name__ == "__main__":
    main()
