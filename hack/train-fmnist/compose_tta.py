#!/usr/bin/env python3
"""Build a test-time-augmentation variant from an exported ONNX classifier.

    /usr/bin/python3 hack/train-fmnist/compose_tta.py BASE.onnx OUT.onnx VIEWS

VIEWS is a comma-separated list of dy:dx[:f] (pixel shifts in [-1,1], "f"
= also horizontally flipped), e.g. "0:0,0:0:f" for identity + flip. The
output graph pads the input by one pixel, cuts every view, runs the base
network once on the concatenated batch and averages the logits. Needs
Debian's python3-onnx (no torch): used to re-export TTA variants from a
committed base model without retraining.
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto


def main():
    base_path, out_path, spec = sys.argv[1], sys.argv[2], sys.argv[3]
    views = []
    for v in spec.split(","):
        parts = v.split(":")
        views.append((int(parts[0]), int(parts[1]), len(parts) > 2 and parts[2] == "f"))
    base = onnx.load(base_path)
    g = base.graph
    inp, out = g.input[0].name, g.output[0].name
    pre = "base/"
    ren = lambda n: pre + n if n else n
    nodes, inits = [], []
    const = lambda name, arr: inits.append(numpy_helper.from_array(np.array(arr, dtype=np.int64), name))
    const("pads", [0, 0, 1, 1, 0, 0, 1, 1])
    nodes.append(helper.make_node("Pad", ["input", "pads"], ["padded"], mode="constant"))
    const("axes23", [2, 3])
    const("axis3", [3])
    const("rev_start", [-1])
    const("rev_end", [-(2**62)])
    const("rev_step", [-1])
    names = []
    for i, (dy, dx, flip) in enumerate(views):
        const(f"s{i}", [1 + dy, 1 + dx])
        const(f"e{i}", [29 + dy, 29 + dx])
        nodes.append(helper.make_node("Slice", ["padded", f"s{i}", f"e{i}", "axes23"], [f"view{i}"]))
        names.append(f"view{i}")
        if flip:
            nodes.append(helper.make_node("Slice", [f"view{i}", "rev_start", "rev_end", "axis3", "rev_step"], [f"view{i}f"]))
            names.append(f"view{i}f")
    k = len(names)
    nodes.append(helper.make_node("Concat", names, ["views"], axis=0))
    for n in g.node:
        m = onnx.NodeProto()
        m.CopyFrom(n)
        m.name = ren(n.name)
        del m.input[:]
        m.input.extend(["views" if x == inp else ren(x) for x in n.input])
        del m.output[:]
        m.output.extend([ren(x) for x in n.output])
        nodes.append(m)
    for t in g.initializer:
        c = onnx.TensorProto()
        c.CopyFrom(t)
        c.name = ren(t.name)
        inits.append(c)
    const("kshape", [k, -1, 10])
    nodes.append(helper.make_node("Reshape", [ren(out), "kshape"], ["stacked"]))
    nodes.append(helper.make_node("ReduceMean", ["stacked"], ["logits"], axes=[0], keepdims=0))
    graph = helper.make_graph(nodes, "tta", [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 1, 28, 28])],
                              [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["n", 10])], inits)
    model = helper.make_model(graph, opset_imports=base.opset_import, producer_name="infadapter compose_tta.py")
    model.ir_version = base.ir_version
    onnx.checker.check_model(model)
    onnx.save(model, out_path)
    print(f"{out_path}: {k} views {spec}", file=sys.stderr)


if __name__ == "__main__":
    main()
