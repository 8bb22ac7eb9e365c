"""Entropy calibration (TensorRT's EntropyCalibration2 KL search) and the cache header per method.

Synthetic and fast: known distributions, a tiny hand-made deploy graph, no model export.
"""
import cv2
import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from edge_edet.cli import main
from edge_edet.contract.metadata import DeployInfo, write_onnx_metadata
from edge_edet.precision import cache as trt_cache
from edge_edet.precision.entropy import NUM_BINS, AbsHistogram, divergence, kl_threshold_bin


def _threshold(values, chunks=4):
    histogram = AbsHistogram()
    for chunk in np.array_split(np.asarray(values, dtype=np.float32), chunks):
        histogram.add(chunk)
    return histogram.threshold(), float(np.abs(values).max())


# ------------------------------------------------------------------------------ the KL search
def test_gaussian_with_outliers_is_clipped_well_below_its_max():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0.0, 1.0, 200_000), rng.uniform(-30.0, 30.0, 20)])
    threshold, peak = _threshold(values)
    assert peak > 25.0
    assert 2.5 < threshold < 8.0  # a few sigma, not the outliers' 30 (nor onnxruntime's quarter, 7.4)


def test_uniform_distribution_keeps_its_range():
    values = np.random.default_rng(1).uniform(-1.0, 1.0, 200_000)
    threshold, peak = _threshold(values)
    assert threshold >= 0.97 * peak


def test_relu6_spike_at_the_clip_keeps_the_clip():
    """A ReLU6 output (mass at exactly 0 and 6): the top is kept, and the zeros do not pull it down."""
    rng = np.random.default_rng(2)
    values = np.clip(rng.normal(1.0, 2.0, 200_000), 0.0, 6.0)
    threshold, _ = _threshold(values)
    assert threshold == pytest.approx(6.0, rel=0.01)
    histogram = AbsHistogram()
    histogram.add(values)
    assert histogram.zeros == int((values == 0).sum()) > 50_000
    assert histogram.counts.sum() == values.size - histogram.zeros


def test_bulk_search_equals_the_step_by_step_definition():
    rng = np.random.default_rng(3)
    for _ in range(3):
        counts = rng.integers(0, 50, 300).astype(float)
        counts[rng.random(300) < 0.3] = 0
        counts[-1] = 3
        best, divergences = kl_threshold_bin(counts)
        reference = np.array([divergence(counts, i) for i in range(128, 301)])
        np.testing.assert_allclose(divergences, reference, rtol=1e-9, atol=1e-12)
        assert best == 128 + int(np.argmin(reference))
        assert np.isinf(reference).any()  # an empty last bin with mass beyond it: Q cannot hold P


def test_narrow_histogram_is_not_clipped():
    counts = np.zeros(NUM_BINS)
    counts[:50] = 7
    assert kl_threshold_bin(counts)[0] == 50


def test_histogram_growth_keeps_counts_exact():
    """A later batch beyond the range doubles it, merging bins pairwise; counts stay those of one histogram."""
    rng = np.random.default_rng(4)
    first = rng.uniform(0.0, 1.0, 10_000).astype(np.float32)
    second = rng.uniform(0.0, 3.5, 10_000).astype(np.float32)
    histogram = AbsHistogram()
    histogram.add(first)
    top = histogram.top
    histogram.add(-second)
    assert histogram.top == pytest.approx(4 * top)
    assert histogram.amax == pytest.approx(float(second.max()))
    both = np.concatenate([first, second]).astype(np.float64)
    direct = np.bincount(np.minimum((both * NUM_BINS / histogram.top).astype(int), NUM_BINS - 1), minlength=NUM_BINS)
    assert histogram.counts.sum() == both.size
    assert np.abs(histogram.counts - direct).sum() <= 20  # float rounding at a few bin edges at most


# ------------------------------------------------------------------------------ tiny graph
SIZE = 64


def _tiny_deploy_graph(path):
    """uint8 NHWC -> Cast -> Transpose -> Conv -> Relu -> Conv -> Sigmoid, with edge_edet metadata."""
    rng = np.random.default_rng(5)
    w1 = numpy_helper.from_array(rng.normal(0, 0.1, (4, 3, 3, 3)).astype(np.float32), "w1")
    w2 = numpy_helper.from_array(rng.normal(0, 0.5, (2, 4, 1, 1)).astype(np.float32), "w2")
    nodes = [
        helper.make_node("Cast", ["images"], ["x_float"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["x_float"], ["x_nchw"], name="transpose", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["x_nchw", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
        helper.make_node("Conv", ["r1", "w2"], ["c2"], name="conv2"),
        helper.make_node("Sigmoid", ["c2"], ["scores"], name="sigmoid"),
    ]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, SIZE, SIZE, 3])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 2, SIZE, SIZE])],
                              [w1, w2])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    write_onnx_metadata(model, DeployInfo(model="lite0", input_size=(SIZE, SIZE), labels=["a", "b"],
                                          mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)))
    onnx.save(model, path)
    return path


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny graph and 6 images of dark pixels with 0.1 % bright ones (a long, thin tail)."""
    root = tmp_path_factory.mktemp("entropy")
    model = _tiny_deploy_graph(str(root / "tiny.onnx"))
    rng = np.random.default_rng(6)
    folder = root / "images"
    folder.mkdir()
    pixels = []
    for index in range(6):
        image = np.clip(rng.normal(20, 6, (SIZE, SIZE, 3)), 1, 255).astype(np.uint8)
        bright = rng.random((SIZE, SIZE)) < 0.001
        image[bright] = rng.integers(200, 256, (int(bright.sum()), 3))
        cv2.imwrite(str(folder / f"{index}.png"), image)
        pixels.append(image)
    return {"root": root, "model": model, "images": str(folder), "pixels": np.stack(pixels)}


def _activation_scales(path):
    """{tensor quantised at a convolution input: its Q scale} of a Q/DQ graph."""
    model = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    return {node.input[0]: float(inits[node.input[1]]) for node in model.graph.node
            if node.op_type == "QuantizeLinear" and node.input[0] not in inits}


def test_tiny_graph_entropy_calibration_end_to_end(tiny, capsys):
    output, calib = str(tiny["root"] / "tiny_int8.onnx"), str(tiny["root"] / "tiny.calib")
    assert main(["calibrate", "--model", tiny["model"], "--images", tiny["images"], "--num-images", "6",
                 "--method", "entropy", "--output", output, "--cache", calib, "--no-progress"]) == 0
    assert ("scales made by entropy calibration, read by TensorRT's IInt8EntropyCalibrator2 "
            "(header EntropyCalibration2)") in capsys.readouterr().out
    version, algorithm, scales = trt_cache.read_calibration_cache_full(calib)
    assert (version, algorithm) == (8502, "EntropyCalibration2")
    # the first convolution reads the image itself: its threshold is our KL search on those pixels
    histogram = AbsHistogram()  # fed image by image, as the calibrator runs them
    for image in tiny["pixels"]:
        histogram.add(image.astype(np.float32))
    expected, peak = histogram.threshold(), histogram.amax
    assert peak >= 200 and expected < 0.5 * peak  # the bright pixels are clipped
    activations = _activation_scales(output)
    assert set(activations) == {"x_nchw", "r1"}
    assert activations["x_nchw"] == pytest.approx(expected / 127, rel=1e-5)
    for name, scale in activations.items():  # the cache carries the Q/DQ graph's numbers
        assert scales[name] == pytest.approx(scale, rel=1e-6)
    assert set(scales) >= {"x_nchw", "c1", "r1", "c2"}


def test_every_method_writes_the_header_tensorrt_tools_read(tiny, capsys):
    """EntropyCalibration2 for every method: trtexec --calib and our builder serve caches through
    IInt8EntropyCalibrator2, which skips any other header; the scales differ by method, and the
    message names the method that made them apart from the calibrator class that reads them."""
    headers, caches = {}, {}
    for method in ("entropy", "percentile", "minmax"):
        calib = str(tiny["root"] / f"{method}.calib")
        assert main(["calibrate", "--model", tiny["model"], "--images", tiny["images"], "--num-images", "6",
                     "--method", method, "--output", str(tiny["root"] / f"{method}.onnx"), "--cache", calib,
                     "--trt-version", "10.3.0", "--no-progress"]) == 0
        line = [text for text in capsys.readouterr().out.splitlines() if text.startswith(f"wrote {calib}")][0]
        assert f"scales made by {method} calibration, read by TensorRT's IInt8EntropyCalibrator2" in line
        with open(calib, encoding="ascii") as stream:
            headers[method] = stream.readline().strip()
        caches[method] = trt_cache.read_calibration_cache(calib)
    assert set(headers.values()) == {"TRT-100300-EntropyCalibration2"}
    assert trt_cache.CALIBRATOR_CLASSES["EntropyCalibration2"] == "IInt8EntropyCalibrator2"
    peak = float(tiny["pixels"].max())
    assert caches["minmax"]["x_nchw"] == pytest.approx(peak / 127, rel=1e-6)  # the extremes
    assert caches["entropy"]["x_nchw"] < 0.5 * caches["minmax"]["x_nchw"]  # the KL search clips the tail


def test_unknown_method_is_refused():
    from edge_edet.contract.errors import EdgeEdetError
    from edge_edet.contract.names import CALIBRATION_METHODS

    with pytest.raises(EdgeEdetError, match="must be one of"):
        trt_cache.algorithm_for_method("kl")
    assert set(trt_cache.METHOD_ALGORITHMS) == set(CALIBRATION_METHODS)  # every method has a header


# ------------------------------------------------------------------ measuring a Q/DQ graph on a CPU
def test_onnxruntime_backend_runs_qdq_as_written(tmp_path):
    """The runtime computes a TensorRT Q/DQ graph as written (float Q/DQ, TensorRT's arithmetic).

    Fused into ONNX Runtime's int8 kernels, this graph's u8 x s8 products of 255 x 127 overflow the int16
    pairs of a CPU without VNNI (AVX2: measured here, every output wrong); with VNNI both agree.
    """
    import onnxruntime as ort

    from edge_edet.precision.quantize import CalibrationResult, quantize_with_ranges
    from edge_edet.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend

    size = 8
    nodes = [
        helper.make_node("Cast", ["images"], ["x_float"], name="cast", to=TensorProto.FLOAT),
        helper.make_node("Transpose", ["x_float"], ["x_nchw"], name="transpose", perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["x_nchw", "w1"], ["c1"], name="conv1"),
        helper.make_node("Conv", ["c1", "w2"], ["c2"], name="conv2"),
        helper.make_node("Mul", ["c2", "k"], ["scores"], name="scale"),
    ]
    weights = [numpy_helper.from_array(np.full((16, 3, 1, 1), 0.5, np.float32), "w1"),
               numpy_helper.from_array(np.full((4, 16, 1, 1), 0.5, np.float32), "w2"),
               numpy_helper.from_array(np.array(1e-3, np.float32), "k")]
    graph = helper.make_graph(nodes, "saturating", [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, size, size, 3])],
                              [helper.make_tensor_value_info("scores", TensorProto.FLOAT, [1, 4, size, size])], weights)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    ranges = {"x_nchw": (-255.0, 255.0), "c1": (-382.5, 382.5)}  # the extremes: values quantise to +-127
    quantized = quantize_with_ranges(model, CalibrationResult("minmax", 1, ranges, list(ranges)))
    write_onnx_metadata(quantized, DeployInfo(model="lite0", input_size=(size, size), labels=["a"], mean=(0.0,) * 3,
                                              std=(1.0,) * 3, precision="int8", extra={"int8": {"method": "minmax"}}))
    path = str(tmp_path / "saturating_int8.onnx")
    onnx.save(quantized, path)
    images = np.random.default_rng(7).integers(0, 256, (1, size, size, 3)).astype(np.uint8)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL  # Q/DQ node by node
    reference = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"]).run(None, {"images": images})[0]
    result = OnnxRuntimeBackend(path, providers=["cpu"]).infer(images)["scores"]
    assert np.abs(reference).max() > 1.0
    np.testing.assert_allclose(result, reference, rtol=1e-5, atol=1e-5)
