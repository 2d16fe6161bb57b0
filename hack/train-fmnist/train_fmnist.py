#!/usr/bin/env python3
"""Train the Fashion-MNIST variant ladder and export it to ONNX.

A developer step, not part of CI (see README.md beside this file). Needs
Debian's python3-torch, libopenblas0-pthread and dataset-fashion-mnist:

    apt-get install -y python3-torch libopenblas0-pthread dataset-fashion-mnist
    THREADS=2 /usr/bin/python3 hack/train-fmnist/train_fmnist.py third_party/models/fmnist

Every exported graph takes input "input" float32 [N,1,28,28] with raw pixel
values / 255 (normalisation is baked into the graph) and returns "logits"
float32 [N,10]; the batch axis is dynamic; opset 13.

The ladder (cheapest first); accuracy is measured on the 10k test set and
printed as JSON lines (the Go test re-measures it through ONNX Runtime):

  linear       Flatten -> Linear(784,10)
  mlp          784-512-256-10 MLP with dropout
  cnn-s        conv16-conv32 + fc128
  cnn-m        (conv32 x2, conv64 x2) with BN + fc256

The top of the committed ladder, cnn-m-tta2 (cnn-m on the image and its
mirror image, logits averaged), is built from cnn-m.onnx by compose_tta.py.
This script can also export shift+flip TTA variants (TTA_VARIANTS=1), but
with the committed cnn-m they were no more accurate than cnn-m itself
(4 views: 91.55 % vs 91.56 %), so they are not part of the ladder.
"""
import gzip
import json
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

D = os.environ.get("FMNIST_DIR", "/usr/share/datasets/fashion-mnist/")
MEAN, STD = 0.2860, 0.3530


def load(kind):
    with gzip.open(os.path.join(D, f"{kind}-images-idx3-ubyte.gz")) as f:
        x = np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
    with gzip.open(os.path.join(D, f"{kind}-labels-idx1-ubyte.gz")) as f:
        y = np.frombuffer(f.read(), np.uint8, offset=8)
    return torch.from_numpy(x.astype(np.float32) / 255.0), torch.from_numpy(y.astype(np.int64))


class Norm(nn.Module):
    def forward(self, x):
        return (x - MEAN) / STD


def conv_bn(i, o):
    return [nn.Conv2d(i, o, 3, padding=1, bias=False), nn.BatchNorm2d(o), nn.ReLU()]


def build(name):
    if name == "linear":
        return nn.Sequential(Norm(), nn.Flatten(), nn.Linear(784, 10))
    if name == "mlp":
        return nn.Sequential(Norm(), nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Dropout(0.2),
                             nn.Linear(512, 256), nn.ReLU(), nn.Dropout(0.2), nn.Linear(256, 10))
    if name == "cnn-s":
        return nn.Sequential(Norm(), nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Linear(1568, 128), nn.ReLU(), nn.Linear(128, 10))
    if name == "cnn-m":
        return nn.Sequential(Norm(), *conv_bn(1, 32), *conv_bn(32, 32), nn.MaxPool2d(2),
                             *conv_bn(32, 64), *conv_bn(64, 64), nn.MaxPool2d(2), nn.Flatten(),
                             nn.Dropout(0.3), nn.Linear(3136, 256), nn.ReLU(), nn.Dropout(0.3),
                             nn.Linear(256, 10))
    raise SystemExit(f"unknown variant {name}")


class TTA(nn.Module):
    """Runs base on several views of the input and averages the logits."""

    def __init__(self, base, shifts, flip):
        super().__init__()
        self.base = base
        self.shifts = shifts  # list of (dy, dx) in pixels, each in [-1, 1]
        self.flip = flip
        self.register_buffer("rev", torch.arange(27, -1, -1))

    def forward(self, x):
        p = F.pad(x, (1, 1, 1, 1))
        views = []
        for dy, dx in self.shifts:
            v = p[:, :, 1 + dy:29 + dy, 1 + dx:29 + dx]
            views.append(v)
            if self.flip:
                views.append(torch.index_select(v, 3, self.rev))
        n = x.shape[0]
        out = self.base(torch.cat(views, 0))
        return out.reshape(len(views), n, 10).mean(0)


def train(m, x, y, epochs, augment, log):
    torch.manual_seed(0)
    opt = torch.optim.Adam(m.parameters(), lr=1e-3)
    steps = epochs * ((len(x) + 127) // 128)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps)
    for ep in range(epochs):
        m.train()
        perm = torch.randperm(len(x))
        t0 = time.time()
        for i in range(0, len(x), 128):
            idx = perm[i:i + 128]
            xb, yb = x[idx], y[idx]
            if augment:
                flip = torch.rand(len(xb)) < 0.5
                xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
            opt.zero_grad()
            loss = F.cross_entropy(m(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
        log(f"epoch {ep + 1}/{epochs} loss {loss.item():.3f} {time.time() - t0:.0f}s")


@torch.no_grad()
def accuracy(m, x, y):
    m.eval()
    ok = 0
    for i in range(0, len(x), 500):
        ok += (m(x[i:i + 500]).argmax(1) == y[i:i + 500]).sum().item()
    return ok / len(x)


def export(m, path):
    m.eval()
    torch.onnx.export(m, torch.zeros(1, 1, 28, 28), path, opset_version=13,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "third_party/models/fmnist"
    spec = sys.argv[2:] or ["linear=3", "mlp=4", "cnn-s=4", "cnn-m=3"]
    torch.set_num_threads(int(os.environ.get("THREADS", "2")))
    torch.manual_seed(0)
    os.makedirs(out, exist_ok=True)
    xtr, ytr = load("train")
    xte, yte = load("t10k")
    log = lambda s: print(s, file=sys.stderr, flush=True)
    trained = {}
    # Checkpoints let the TTA variants be re-exported without retraining:
    # "cnn-m=0" loads $CKPT_DIR/cnn-m.pt instead of training.
    ckpt = os.environ.get("CKPT_DIR", "/tmp/fmnist-ckpt")
    os.makedirs(ckpt, exist_ok=True)
    for item in spec:
        name, epochs = item.split("=")
        m = build(name)
        log(f"== {name}: {sum(p.numel() for p in m.parameters())} params, {epochs} epochs")
        t0 = time.time()
        if int(epochs) == 0:
            m.load_state_dict(torch.load(os.path.join(ckpt, f"{name}.pt")))
        else:
            train(m, xtr, ytr, int(epochs), name.startswith("cnn"), log)
            torch.save(m.state_dict(), os.path.join(ckpt, f"{name}.pt"))
        trained[name] = m
        acc = accuracy(m, xte, yte)
        export(m, os.path.join(out, f"{name}.onnx"))
        print(json.dumps({"variant": name, "accuracy": acc, "trainSeconds": round(time.time() - t0),
                          "params": sum(p.numel() for p in m.parameters())}), flush=True)
    if "cnn-m" in trained and os.environ.get("TTA_VARIANTS") == "1":
        base = trained["cnn-m"]
        tta = {
            "cnn-m-tta4": TTA(base, [(0, 0), (0, 1)], True),
            "cnn-m-tta12": TTA(base, [(0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (1, 1)], True),
        }
        for name, m in tta.items():
            acc = accuracy(m, xte, yte)
            export(m, os.path.join(out, f"{name}.onnx"))
            print(json.dumps({"variant": name, "accuracy": acc, "trainSeconds": 0,
                              "params": sum(p.numel() for p in base.parameters())}), flush=True)


if __name__ == "__main__":
    main()
