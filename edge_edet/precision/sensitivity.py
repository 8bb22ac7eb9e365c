"""Which convolutions lose the most in INT8: measured, so `--mixed` keeps those in fp16.

Both the fp32 network and its fully quantised Q/DQ version run on a few calibration images with
every intermediate tensor saved (onnxruntime.quantization.qdq_loss_debug).  For each convolution,
the noise it adds is the quantisation noise-to-signal ratio of its output minus that of its
(dequantised) input, both against the fp32 model: the error from quantising this layer's input and
weights, as amplified by the layer, without the error that arrived from upstream.  The largest
adders are the sensitive layers.
"""
from __future__ import annotations

import os
from typing import List, Tuple

import numpy as np
import onnx

from ..contract.fileio import work_folder
from .calibration_data import LetterboxedReader
from .regions import CONV_OPS, weight_groups

DEFAULT_MIXED_LAYERS = 8
SENSITIVITY_IMAGES = 8


def _noise_ratio(reference: List[np.ndarray], other: List[np.ndarray]) -> float:
    """||ref - other||^2 / ||ref||^2 (from onnxruntime's SQNR in dB)."""
    from onnxruntime.quantization.qdq_loss_debug import compute_signal_to_quantization_noice_ratio

    sqnr_db = compute_signal_to_quantization_noice_ratio(reference, other)
    return 10.0 ** (-sqnr_db / 10.0)


def layer_sensitivity(model: onnx.ModelProto, calibration, images: np.ndarray,
                      num_images: int = SENSITIVITY_IMAGES) -> List[Tuple[str, float]]:
    """[(conv node name, noise added)] for every network convolution, most sensitive first."""
    from onnxruntime.quantization.qdq_loss_debug import collect_activations, modify_model_output_intermediate_tensors

    from .quantize import quiet_onnxruntime, network_cut, quantize_with_ranges, static_batch

    regions, cut = network_cut(model)
    network = set(regions.network)
    quantized = quantize_with_ranges(model, calibration)
    batch = static_batch(model)
    sample = images[:max(batch, num_images // batch * batch)]
    activations = {}
    with work_folder("sens") as tmp:
        for tag, proto in (("float", model), ("qdq", quantized)):
            full, sub, aug = (os.path.join(tmp, f"{tag}_{kind}.onnx") for kind in ("full", "net", "aug"))
            onnx.save(proto, full)
            onnx.utils.extract_model(full, sub, [proto.graph.input[0].name], cut, check_model=False)
            with quiet_onnxruntime():
                modify_model_output_intermediate_tensors(sub, aug)
                activations[tag] = collect_activations(aug, LetterboxedReader(sample, proto.graph.input[0].name, batch=batch))
    float_acts, qdq_acts = activations["float"], activations["qdq"]
    qdq_nodes = {n.name: n for n in quantized.graph.node}
    scores = []
    for node in model.graph.node:
        if node.op_type not in CONV_OPS or node.name not in network or node.name not in qdq_nodes:
            continue
        qnode = qdq_nodes[node.name]
        inp, out = node.input[0], node.output[0]
        if inp not in float_acts or qnode.input[0] not in qdq_acts or out not in float_acts or out not in qdq_acts:
            continue
        noise_in = _noise_ratio(float_acts[inp], qdq_acts[qnode.input[0]])
        noise_out = _noise_ratio(float_acts[out], qdq_acts[out])
        scores.append((node.name, noise_out - noise_in))
    scores.sort(key=lambda item: item[1], reverse=True)
    return scores


def most_sensitive(model: onnx.ModelProto, calibration, images: np.ndarray, count: int = DEFAULT_MIXED_LAYERS,
                   progress: bool = True) -> List[str]:
    """Convolutions of the `count` layers (a shared-weight head layer counts once) adding the most INT8 noise."""
    scores = dict(layer_sensitivity(model, calibration, images))
    ranked = sorted(weight_groups(model).values(), key=lambda members: max(scores.get(m, 0.0) for m in members),
                    reverse=True)
    return [name for members in ranked[:count] for name in members]
