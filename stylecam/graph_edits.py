"""Edits of a model's graph made when it loads (onnx only; session.py, the only onnxruntime import, adds
float16): reflect padding inside the graph, an output Clip. Images stay float32 (N, 3, H, W) at the ends."""
from __future__ import annotations

import numpy as np

from stylecam.contract import MIN_SIDE
from stylecam.errors import UserError


def edited_model(path: str, clamp: tuple[float, float] | None, pad: tuple[int, int] | None = None):
    """(onnx.ModelProto of ``path`` with in-graph reflect padding (``pad``) and/or an output Clip, the pad
    or None when the padding was not added: opset below 11 or not one 4-D input). Inputs and outputs
    stay float32 (N, 3, H, W), so callers do not change."""
    import onnx
    from onnx import helper, numpy_helper

    try:
        model = onnx.load(path)
    except Exception as err:
        raise UserError(f"cannot read ONNX model {path}: {str(err).strip()[:200]}",
                        "the file is corrupt or not an ONNX model; re-export or re-download it") from None
    if pad is not None and not _add_reflect_padding(model, *pad):
        pad = None
    if clamp is not None:
        graph = model.graph
        out = graph.output[0]
        raw = out.name + "_unclamped"
        for node in graph.node:
            node.output[:] = [raw if name == out.name else name for name in node.output]
        lo, hi = (numpy_helper.from_array(np.array(v, np.float32), f"{out.name}_clip_{tag}")
                  for v, tag in zip(clamp, ("lo", "hi")))
        graph.initializer.extend([lo, hi])
        # raw - raw is 0, or NaN where raw is NaN or infinite: added after the Clip, it keeps a broken
        # output detectable (Stylizer checks for NaN), which Clip alone would turn into 0 or 255
        graph.node.extend([helper.make_node("Clip", [raw, lo.name, hi.name], [out.name + "_clipped"]),
                           helper.make_node("Sub", [raw, raw], [out.name + "_nonfinite"]),
                           helper.make_node("Add", [out.name + "_clipped", out.name + "_nonfinite"], [out.name])])
    return model, pad


def in_graph_padding_fits(height: int, width: int, multiple: int, extra: int) -> bool:
    """Whether the in-graph padding pads an (H, W) image exactly as imageops.pad_amounts and
    reflect_pad do: every pad smaller than its axis (numpy reflects repeatedly beyond that, ONNX
    does not), and no growth to contract.MIN_SIDE needed (the graph only pads to the multiple)."""
    h, w = height + 2 * extra, width + 2 * extra
    if min(h, w) < MIN_SIDE:
        return False
    dh, dw = (-h) % multiple, (-w) % multiple
    return extra + dh - dh // 2 < height and extra + dw - dw // 2 < width


def _add_reflect_padding(model, multiple: int, extra: int) -> bool:
    """In place: input -> reflect-pad (extra per side, then to a multiple, larger half at the
    bottom/right) -> the network -> crop back to the input's size. False (model untouched) when
    the default opset is below 11 or the graph has not exactly one 4-D input and one output."""
    from onnx import helper, numpy_helper

    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if opset < 11 or len(inputs) != 1 or len(graph.output) != 1 or \
            len(inputs[0].type.tensor_type.shape.dim) != 4:
        return False
    src, dst = inputs[0].name, graph.output[0].name
    inner_in, inner_out = src + "_padded", dst + "_padded"
    for node in graph.node:
        node.input[:] = [inner_in if name == src else name for name in node.input]
        node.output[:] = [inner_out if name == dst else name for name in node.output]
    consts = {"hw_from": [2], "hw_to": [4], "two_extra": [2 * extra] * 2, "multiple": [multiple],
              "two": [2], "extra": [extra] * 2, "zeros": [0, 0], "axes": [2, 3]}
    graph.initializer.extend(numpy_helper.from_array(np.array(v, np.int64), f"pad_{k}") for k, v in consts.items())
    n = helper.make_node
    head = [n("Shape", [src], ["pad_shape"]),
            n("Slice", ["pad_shape", "pad_hw_from", "pad_hw_to"], ["pad_hw"]),                 # [H, W]
            n("Add", ["pad_hw", "pad_two_extra"], ["pad_hw_ex"]),
            n("Neg", ["pad_hw_ex"], ["pad_neg"]),
            n("Mod", ["pad_neg", "pad_multiple"], ["pad_rest"]),                                 # (-h) mod m, >= 0
            n("Div", ["pad_rest", "pad_two"], ["pad_half"]),
            n("Add", ["pad_half", "pad_extra"], ["pad_begin"]),                                  # [top, left]
            n("Sub", ["pad_rest", "pad_half"], ["pad_rest_end"]),
            n("Add", ["pad_rest_end", "pad_extra"], ["pad_end"]),                                # [bottom, right]
            n("Concat", ["pad_zeros", "pad_begin", "pad_zeros", "pad_end"], ["pad_pads"], axis=0),
            n("Pad", [src, "pad_pads"], [inner_in], mode="reflect")]
    tail = [n("Add", ["pad_begin", "pad_hw"], ["pad_stop"]),
            n("Slice", [inner_out, "pad_begin", "pad_stop", "pad_axes"], [dst])]
    nodes = head + list(graph.node) + tail
    del graph.node[:]
    graph.node.extend(nodes)
    return True
