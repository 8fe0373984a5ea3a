"""Float16-stored weights in a float32 ONNX graph: half the file, float32 outputs on the CPU."""
from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch

from trainer.nets.transformer import CONFIGS, transformer_from_config
from trainer.onnx_weights import float32_initializers, store_weights_fp16, weights_dtype


def exported(net: torch.nn.Module) -> onnx.ModelProto:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net, (torch.rand(1, 3, 32, 32) * 255,), buffer, dynamo=False, input_names=["image"],
                          output_names=["stylised"], opset_version=17, do_constant_folding=False,
                          dynamic_axes={"image": {2: "h", 3: "w"}, "stylised": {2: "h", 3: "w"}})
    return onnx.load_from_string(buffer.getvalue())


def cpu_session(model: onnx.ModelProto, optimized_path=None) -> ort.InferenceSession:
    options = ort.SessionOptions()
    if optimized_path:
        options.optimized_model_filepath = str(optimized_path)
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def test_fp16_weights_halve_the_file_and_give_the_rounded_networks_output(tmp_path):
    torch.manual_seed(0)
    net = transformer_from_config(CONFIGS["lite-fr"]).eval()
    model = exported(net)
    fp32_bytes = model.ByteSize()
    small = store_weights_fp16(exported(net))
    onnx.checker.check_model(small, full_check=True)
    assert weights_dtype(small) == "fp16" and weights_dtype(model) == "fp32"
    assert small.ByteSize() < 0.7 * fp32_bytes      # lite-fr: 0.62 (small tensors stay float32)
    rounded = transformer_from_config(CONFIGS["lite-fr"]).eval()
    rounded.load_state_dict({k: v.half().float() if v.is_floating_point() else v for k, v in net.state_dict().items()})
    x = torch.rand(1, 3, 48, 64) * 255
    with torch.no_grad():
        expected = rounded(x).numpy()
    got = cpu_session(small).run(None, {"image": x.numpy()})[0]
    assert got.dtype == np.float32
    assert np.abs(got - expected).max() < 0.05
    # the weights read back are the rounded ones, under their own names (the exporter shares equal
    # tensors, e.g. the untrained norms' ones and zeros, under other names: those are left out)
    weights = float32_initializers(small)
    compared = [k for k, v in rounded.state_dict().items() if k in weights and v.numel() >= 16]
    assert len(compared) >= 10
    for key in compared:
        assert np.array_equal(weights[key], rounded.state_dict()[key].numpy()), key


def test_onnxruntime_folds_the_casts_into_float32_weights_on_the_cpu(tmp_path):
    torch.manual_seed(1)
    small = store_weights_fp16(exported(transformer_from_config(CONFIGS["lite"]).eval()))
    assert sum(n.op_type == "Cast" for n in small.graph.node) > 5
    cpu_session(small, tmp_path / "optimized.onnx")
    optimized = onnx.load(tmp_path / "optimized.onnx")
    assert not [n for n in optimized.graph.node if n.op_type == "Cast"]
    assert {i.data_type for i in optimized.graph.initializer} <= {onnx.TensorProto.FLOAT, onnx.TensorProto.INT64}
