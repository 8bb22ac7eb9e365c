"""INT8 deploy graph with explicit Q/DQ, placed the way TensorRT's explicit quantisation expects.

TensorRT 11 removed implicit INT8 and the calibrators, so the quantisation is written into the
ONNX graph: symmetric int8, zero point 0, per-channel weights (axis 0), per-tensor activations,
Q/DQ on the inputs of every convolution and not on their outputs (TensorRT fuses the next
layer's Q into the convolution; SiLU and the heads keep their higher-precision input).  A tensor
that feeds a convolution and a residual add shares one Q/DQ pair, which is the placement that
lets TensorRT fuse the add into the convolution.  Pre-processing, box decoding, sigmoid and NMS
are never quantised.  Weights stay fp32 behind a Q->DQ pair (TensorRT 8.5's parser takes that
form) and biases stay fp32.

The images run through onnxruntime.quantization's calibrator on the network alone (the graph cut
before the NMS tail, so graphs with a TensorRT plugin tail calibrate too).  minmax and percentile
are its statistics; entropy is TensorRT's EntropyCalibration2 search on |x| histograms
(`entropy.py`; onnxruntime's own entropy clips every tensor to about a quarter of its range).  The
ranges are kept: the same ranges become the legacy TensorRT calibration cache.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from typing import Dict, Iterable, List, Optional

import numpy as np
import onnx

from ..contract.errors import EdgeEdetError
from ..contract.fileio import work_folder
from ..contract.names import CALIBRATION_METHODS
from ..contract.metadata import write_onnx_metadata
from .calibration_data import LetterboxedReader, _progress
from .entropy import AbsHistogram
from .regions import CONV_OPS, check_deploy_graph, constants_to_initializers, split_regions, topological_sort

METHODS = CALIBRATION_METHODS
CHUNK = 25  # images whose intermediate tensors are held in memory at once during calibration
# onnxruntime calibrator settings: real-valued histograms for percentile (its entropy calibrator
# collects those), extremes for minmax
CALIBRATOR_OPTIONS = {
    "histogram": {"num_bins": 1024, "num_quantized_bins": 255, "symmetric": True},
    "minmax": {"symmetric": True},
}
PERCENTILE = 99.999
QDQ_OPTIONS = {
    "ActivationSymmetric": True,  # zero point 0: TensorRT takes symmetric activations only
    "WeightSymmetric": True,
    "AddQDQPairToWeight": True,  # fp32 weight -> Q -> DQ
    "QuantizeBias": False,  # TensorRT keeps the bias in float
    "OpTypesToExcludeOutputQuantization": ["Conv"],  # inputs only, as TensorRT recommends
    "QDQKeepRemovableActivations": True,  # keep ReLU6/Clip explicit for TensorRT
}


@dataclass
class CalibrationResult:
    method: str
    num_images: int
    ranges: Dict[str, tuple]  # tensor name -> (min, max) as calibrated (symmetric)
    network_tensors: List[str] = field(default_factory=list)  # float tensors inside the network

    def amax(self, name: str) -> float:
        low, high = self.ranges[name]
        return float(max(abs(low), abs(high)))

    def trt_scales(self) -> Dict[str, float]:
        """{tensor: amax / 127} for the network's tensors: a TensorRT calibration cache's content."""
        return {name: np.float32(self.amax(name) / 127.0).item() for name in self.network_tensors
                if name in self.ranges and self.amax(name) > 0}


def static_batch(model: onnx.ModelProto) -> int:
    """The `images` input's batch when it is fixed above 1, else 1 (one image per run)."""
    dim = model.graph.input[0].type.tensor_type.shape.dim
    return int(dim[0].dim_value) if dim and dim[0].HasField("dim_value") and dim[0].dim_value > 1 else 1


def _method_enum(method: str):
    from onnxruntime.quantization import CalibrationMethod

    table = {"entropy": CalibrationMethod.Entropy, "percentile": CalibrationMethod.Percentile,
             "minmax": CalibrationMethod.MinMax}
    if method not in table:
        raise EdgeEdetError(f"calibration method must be one of {', '.join(METHODS)}, not {method}")
    return table[method]


def network_cut(model: onnx.ModelProto):
    """(network node names, the tensors where the network hands over to the tail)."""
    regions = split_regions(model)
    network = set(regions.network)
    produced = {out: node.name for node in model.graph.node for out in node.output}
    outputs = []
    graph_outputs = {o.name for o in model.graph.output}
    for node in model.graph.node:
        if node.name in network:
            continue
        for name in node.input:
            if produced.get(name) in network and name not in outputs:
                outputs.append(name)
    for name in graph_outputs:
        if produced.get(name) in network and name not in outputs:
            outputs.append(name)
    return regions, outputs


def _network_tensors(model: onnx.ModelProto, network: Iterable[str]) -> List[str]:
    initializers = {init.name for init in model.graph.initializer}
    constants = {out for node in model.graph.node if node.op_type == "Constant" for out in node.output}
    names = []
    network = set(network)
    for node in model.graph.node:
        if node.name in network:
            for name in list(node.input) + list(node.output):
                if name and name not in initializers and name not in constants and name not in names:
                    names.append(name)
    return names


def calibrate(model: onnx.ModelProto, images: np.ndarray, method: str = "entropy", progress: bool = True,
              all_tensors: bool = True) -> CalibrationResult:
    """Ranges over `images` (uint8 [N,H,W,3] letterboxed) of the network's float tensors.

    all_tensors=False calibrates only what the Q/DQ graph needs (convolution inputs), about half
    the work; a TensorRT cache needs every network tensor.
    """
    return calibrate_methods(model, images, (method,), progress, all_tensors)[method]


def calibrate_methods(model: onnx.ModelProto, images: np.ndarray, methods=("entropy",), progress: bool = True,
                      all_tensors: bool = True, symmetric: bool = True) -> Dict[str, CalibrationResult]:
    """{method: CalibrationResult}; entropy and percentile share one pass over the images.

    percentile cuts 0.0005 % of the values on each side of onnxruntime's real-valued histograms;
    entropy takes the KL-optimal threshold of our |x| histograms (TensorRT's EntropyCalibration2).
    symmetric=False keeps minmax ranges one-sided (uint8 ONNX Runtime CPU layout only).
    """
    from onnxruntime.quantization import create_calibrator

    for method in methods:
        _method_enum(method)
    if len(images) == 0:
        raise EdgeEdetError("no calibration images")
    regions, cut = network_cut(model)
    network_tensors = _network_tensors(model, regions.network)
    wanted = set(network_tensors) if all_tensors else {
        n.input[0] for n in model.graph.node if n.op_type in CONV_OPS and n.name in set(regions.network)}
    passes = []
    if {"entropy", "percentile"} & set(methods):
        passes.append(("histogram", [m for m in methods if m in ("entropy", "percentile")]))
    if "minmax" in methods:
        passes.append(("minmax", ["minmax"]))
    results = {}
    with work_folder("calib") as tmp:
        sub_path = os.path.join(tmp, "network.onnx")
        full_path = os.path.join(tmp, "full.onnx")
        onnx.save(model, full_path)
        input_name = model.graph.input[0].name
        onnx.utils.extract_model(full_path, sub_path, [input_name], cut, check_model=False)
        for collect_as, computed in passes:
            calibrator = create_calibrator(sub_path, None, augmented_model_path=os.path.join(tmp, "augmented.onnx"),
                                           calibrate_method=_method_enum("entropy" if collect_as == "histogram"
                                                                         else collect_as),
                                           extra_options=dict(CALIBRATOR_OPTIONS[collect_as], symmetric=symmetric))
            if getattr(calibrator, "tensors_to_calibrate", None):
                calibrator.tensors_to_calibrate = set(calibrator.tensors_to_calibrate) & wanted
            if collect_as == "histogram":
                calibrator.collector = _Histograms("percentile" in computed, "entropy" in computed)
            bar = _progress(len(images), f"calibrating ({'/'.join(computed)})", progress)
            batch = static_batch(model)
            reader = LetterboxedReader(images, input_name, batch=batch, progress=bar)
            chunk = max(batch, CHUNK // batch * batch)
            try:
                for start in range(0, len(images), chunk):
                    reader.set_range(start, start + chunk)
                    with quiet_onnxruntime():
                        calibrator.collect_data(reader)
            finally:
                bar.close()
            for method in computed:
                with quiet_onnxruntime():
                    if method == "minmax":
                        raw = {name: data.range_value for name, data in calibrator.compute_data().items()}
                    elif method == "entropy":
                        raw = calibrator.collector.entropy_ranges()
                    else:
                        raw = calibrator.collector.percentile_ranges()
                ranges = {}
                for name, (low, high) in raw.items():
                    if name in wanted:
                        ranges[name] = (float(np.asarray(low).reshape(-1)[0]), float(np.asarray(high).reshape(-1)[0]))
                results[method] = CalibrationResult(method, len(images), ranges, network_tensors)
    return results


class _Histograms:
    """The collector onnxruntime's histogram calibrator feeds each chunk of tensors to (it keeps a preset
    `collector`): onnxruntime's real-valued histograms for percentile, our |x| histograms for entropy."""

    def __init__(self, percentile: bool, entropy: bool):
        from onnxruntime.quantization.calibrate import HistogramCollector

        options = CALIBRATOR_OPTIONS["histogram"]
        self.real = HistogramCollector("entropy", False, options["num_bins"], options["num_quantized_bins"],
                                       PERCENTILE, "same") if percentile else None
        self.absolute: Dict[str, AbsHistogram] = {} if entropy else None

    def collect(self, name_to_arrays) -> None:
        if self.real is not None:
            self.real.collect(name_to_arrays)  # method 'entropy' collects real values (two-sided)
        if self.absolute is not None:
            for name, arrays in name_to_arrays.items():
                histogram = self.absolute.setdefault(name, AbsHistogram())
                for array in arrays if isinstance(arrays, list) else [arrays]:
                    histogram.add(array)

    def percentile_ranges(self) -> Dict[str, tuple]:
        self.real.method, self.real.symmetric = "percentile", False  # two-sided cut of the real histogram
        return {name: value[:2] for name, value in self.real.compute_collection_result().items()}

    def entropy_ranges(self) -> Dict[str, tuple]:
        ranges = {}
        for name, histogram in self.absolute.items():
            amax = histogram.threshold()
            ranges[name] = (-amax, amax)
        return ranges


# ONNX Runtime's CPU int8 kernels (VNNI: u8 x s8) need a Q after each op to fuse DQ->Conv->Q into
# QLinearConv; TensorRT rejects the asymmetric u8 activations this uses.  For CPU deployment only.
ORT_CPU_OPS = ["Conv", "Add", "MaxPool", "Resize", "Concat", "Clip"]
ORT_CPU_OPTIONS = {"ActivationSymmetric": False, "WeightSymmetric": True, "QuantizeBias": True}


def quantize_with_ranges(model: onnx.ModelProto, calibration: CalibrationResult,
                         exclude: Optional[Iterable[str]] = None, target: str = "tensorrt") -> onnx.ModelProto:
    """Insert Q/DQ on the inputs of the network's convolutions (minus `exclude`) with these ranges.

    target 'onnxruntime' instead quantises inputs and outputs of the network's convolutions, adds,
    pools, resizes and concats with uint8 activations: ONNX Runtime's fast CPU layout, not TensorRT's.
    """
    from onnxruntime.quantization import QDQQuantizer, QuantType
    from onnxruntime.quantization.calibrate import TensorData, TensorsData
    from onnxruntime.quantization.quant_utils import load_model_with_shape_infer

    model = _copy(model)
    constants_to_initializers(model)
    regions = split_regions(model)
    network = set(regions.network)
    exclude = set(exclude or [])
    op_types = list(CONV_OPS) if target == "tensorrt" else ORT_CPU_OPS
    if target not in ("tensorrt", "onnxruntime"):
        raise EdgeEdetError(f"quantisation target must be tensorrt or onnxruntime, not {target}")
    convs = [n.name for n in model.graph.node if n.op_type in op_types and n.name in network and n.name not in exclude]
    ranges = _ranges_through_casts(model, calibration.ranges)
    data = {name: TensorData(lowest=np.float32(low), highest=np.float32(high))
            for name, (low, high) in ranges.items()}
    tensors_range = TensorsData(_method_enum(calibration.method), data)
    with work_folder("qdq") as tmp:
        path = os.path.join(tmp, "model.onnx")
        onnx.save(model, path)
        from pathlib import Path

        inferred = load_model_with_shape_infer(Path(path))
        if target == "tensorrt":
            quantizer = QDQQuantizer(inferred, True, False, QuantType.QInt8, QuantType.QInt8, tensors_range,
                                     convs, [], list(CONV_OPS), dict(QDQ_OPTIONS))
        else:
            quantizer = QDQQuantizer(inferred, True, False, QuantType.QInt8, QuantType.QUInt8, tensors_range,
                                     convs, [], op_types, dict(ORT_CPU_OPTIONS))
        with quiet_onnxruntime():
            quantized = quantizer.quantize_model()
    _unquantize_inputs(quantized, exclude)
    topological_sort(quantized)
    quantized.producer_name = model.producer_name or quantized.producer_name
    return quantized


def _ranges_through_casts(model: onnx.ModelProto, ranges: Dict[str, tuple]) -> Dict[str, tuple]:
    """A Cast (fp16 <-> fp32, added by `--mixed`) keeps its input's calibrated range."""
    ranges = dict(ranges)
    for _ in range(2):  # Cast chains are at most two long
        for node in model.graph.node:
            if node.op_type == "Cast" and node.output[0] not in ranges:
                source = node.input[0]
                source = source[:-len("_fp16")] if source.endswith("_fp16") and source not in ranges else source
                if source in ranges:
                    ranges[node.output[0]] = ranges[source]
    return ranges


def _unquantize_inputs(model: onnx.ModelProto, nodes: Iterable[str]) -> None:
    """Excluded convolutions read the float tensor even where a shared Q/DQ pair feeds their neighbours."""
    nodes = set(nodes)
    producer = {out: node for node in model.graph.node for out in node.output}
    for node in model.graph.node:
        if node.name in nodes:
            dq = producer.get(node.input[0])
            if dq is not None and dq.op_type == "DequantizeLinear":
                q = producer.get(dq.input[0])
                if q is not None and q.op_type == "QuantizeLinear":
                    node.input[0] = q.input[0]


def quantize_int8(model: onnx.ModelProto, images: np.ndarray, method: str = "entropy", mixed: bool = False,
                  mixed_layers: Optional[List[str]] = None, calibration: Optional[CalibrationResult] = None,
                  progress: bool = True, source: str = "ONNX model", fp16: bool = False):
    """fp32 deploy graph -> (INT8 Q/DQ graph, CalibrationResult).

    mixed: keep the most quantisation-sensitive convolutions out of INT8, in fp16
    (`mixed_layers` names them, as measured by `sensitivity.most_sensitive`).
    fp16: the unquantized float compute in float16 (fp16.add_fp16_compute), for strongly typed
    TensorRT (10.x / 11.x), which otherwise runs everything between the INT8 layers in FP32.
    """
    info = check_deploy_graph(model, source)
    model = _copy(model)
    constants_to_initializers(model)
    if calibration is None:
        calibration = calibrate(model, images, method, progress, all_tensors=False)
    kept: List[str] = []
    if mixed:
        if mixed_layers is None:  # measured by sensitivity.most_sensitive (the workflow does that first)
            raise EdgeEdetError("mixed INT8 needs the layers to keep in fp16 (sensitivity.most_sensitive measures them)")
        from .regions import expand_shared_weights

        kept = expand_shared_weights(model, list(mixed_layers))
    source_model = model
    if kept:  # fp16 first, on the well-typed float graph; the quantizer then leaves those nodes alone
        from .fp16 import convert_nodes_to_fp16

        source_model = convert_nodes_to_fp16(_copy(model), kept)
    quantized = quantize_with_ranges(source_model, calibration, exclude=kept)
    casts = 0
    if fp16:
        from .fp16 import add_fp16_compute

        before = sum(1 for n in quantized.graph.node if n.op_type == "Cast")
        quantized = add_fp16_compute(quantized, split_regions(model).float_only)
        casts = sum(1 for n in quantized.graph.node if n.op_type == "Cast") - before
    info.precision = "int8"
    info.extra = dict(info.extra, int8={
        "method": calibration.method, "calibration_images": calibration.num_images,
        "fp16_layers": kept, "quantizer": f"onnxruntime {_ort_version()}",
        "placement": "Q/DQ on convolution inputs; symmetric; per-channel weights; per-tensor activations",
        "fp16_compute": bool(fp16), "fp16_casts_added": casts})
    write_onnx_metadata(quantized, info)
    return quantized, calibration


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    clone = onnx.ModelProto()
    clone.CopyFrom(model)
    return clone


def _ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


class quiet_onnxruntime:
    """onnxruntime.quantization prints per-step chatter and warns about pre-processing; keep stderr clean."""

    def __enter__(self):
        import contextlib
        import io
        import logging

        self._stack = contextlib.ExitStack()
        self._stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        self._stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore")
        logger = logging.getLogger()
        self._level = logger.level
        logger.setLevel(logging.ERROR)
        return self

    def __exit__(self, *exc):
        import logging

        logging.getLogger().setLevel(self._level)
        self._stack.close()
        return False
