"""Float16 storage of an ONNX model's float32 weights, computed in float32 wherever it runs.

``store_weights_fp16`` replaces every float32 initializer (of at least ``min_elements`` values)
by a float16 copy followed by a Cast to float32. The file is half the size; the graph still
computes in float32. onnxruntime folds the Casts when it loads the model (graph optimisation
level "basic" and above), so a CPU session holds the same float32 weights, rounded to float16,
and runs exactly as fast as a float32 file. ``float32_initializers`` reads the weights back.
"""
from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

SUFFIX = "__fp16"
#: initializers smaller than this stay float32 (scalars, shapes: nothing to save)
MIN_ELEMENTS = 16


def store_weights_fp16(model: onnx.ModelProto, min_elements: int = MIN_ELEMENTS) -> onnx.ModelProto:
    """The model with its float32 initializers stored as float16 + Cast (changed in place and returned)."""
    graph = model.graph
    kept, casts = [], []
    for init in graph.initializer:
        if init.data_type == TensorProto.FLOAT and int(np.prod(init.dims)) >= min_elements:
            half = numpy_helper.from_array(numpy_helper.to_array(init).astype(np.float16), init.name + SUFFIX)
            kept.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT,
                                          name=init.name + "_to_float32"))
        else:
            kept.append(init)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    return model


def weights_dtype(model: onnx.ModelProto) -> str:
    """"fp16" when the model stores its weights as store_weights_fp16 does, else "fp32"."""
    return "fp16" if any(i.name.endswith(SUFFIX) for i in model.graph.initializer) else "fp32"


def float32_initializers(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """{name: float32 array} of the model's initializers, float16-stored ones under their float32 name."""
    out = {}
    for init in model.graph.initializer:
        array = numpy_helper.to_array(init)
        name = init.name[:-len(SUFFIX)] if init.name.endswith(SUFFIX) else init.name
        out[name] = array.astype(np.float32) if array.dtype == np.float16 else array
    return out
