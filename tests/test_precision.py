"""FP16 and INT8 deploy graphs, the TensorRT calibration cache, and the calibrate/convert commands."""
import glob
import os
import re
import shutil
import struct

import cv2
import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from conftest import shared_path
from edge_edet.cli import main
from edge_edet.contract.metadata import read_onnx_metadata
from edge_edet.precision import cache as trt_cache
from edge_edet.precision.quantize import network_cut
from edge_edet.precision.regions import split_regions

TAIL_OPS = ("Exp", "Sigmoid", "TopK", "NonMaxSuppression")


def _export(path, checkpoint=None):
    from edge_edet import create_model
    from edge_edet.export import export_onnx

    model = create_model("lite0", num_classes=1, checkpoint=checkpoint)
    export_onnx(model, str(path), labels=["person"], score_threshold=0.001, log=lambda *_: None)
    return str(path)


def _calibration_images(count):
    folder = shared_path("data", "person_coco", "train")
    return sorted(glob.glob(os.path.join(folder, "*.jpg")))[:count]


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    """fp32, fp16 and INT8 (minmax, 4 real images, with cache) graphs of a random-weight lite0."""
    root = tmp_path_factory.mktemp("precision")
    fp32 = _export(root / "lite0.onnx")
    fp16 = str(root / "lite0_fp16.onnx")
    assert main(["convert", "--precision", "fp16", fp32, fp16]) == 0
    images = root / "calib"
    images.mkdir()
    for path in _calibration_images(4):
        shutil.copy(path, images)
    int8 = str(root / "lite0_int8.onnx")
    calib = str(root / "lite0.calib")
    assert main(["calibrate", "--model", fp32, "--images", str(images), "--num-images", "4", "--method", "minmax",
                 "--output", int8, "--cache", calib, "--no-progress"]) == 0
    return {"root": root, "fp32": fp32, "fp16": fp16, "int8": int8, "cache": calib, "images": str(images)}


def _session(path):
    import onnxruntime as ort

    return ort.InferenceSession(path, providers=["CPUExecutionProvider"])


def _frame(index=0):
    return cv2.imread(_calibration_images(index + 1)[index])


def _producers(model):
    return {out: node for node in model.graph.node for out in node.output}


def io_types(model):
    """(name, element type) of every graph input and output: what the converters must leave as it was."""
    return [(t.name, t.type.tensor_type.elem_type) for t in list(model.graph.input) + list(model.graph.output)]


# ---------------------------------------------------------------------------------------- FP16
def test_fp16_graph_keeps_io_decode_and_nms_in_fp32(graphs):
    model = onnx.load(graphs["fp16"])
    reference = onnx.load(graphs["fp32"])
    assert io_types(model) == io_types(reference)
    inits = {i.name: i for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs and all(inits[n.input[1]].data_type == onnx.TensorProto.FLOAT16 for n in convs)
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    tail = [n for n in model.graph.node if n.op_type in TAIL_OPS]
    assert {n.op_type for n in tail} == set(TAIL_OPS)
    for node in tail:
        assert types.get(node.input[0], onnx.TensorProto.FLOAT) == onnx.TensorProto.FLOAT, node.name
    # tensor names match the fp32 graph's (calibration ranges and caches are keyed by them)
    names = {o for n in model.graph.node for o in n.output} | {i.name for i in model.graph.initializer}
    assert {o for n in reference.graph.node for o in n.output} <= names
    assert read_onnx_metadata(graphs["fp16"]).precision == "fp16"


def test_fp16_graph_runs_and_follows_fp32(graphs):
    frame = _frame()
    from edge_edet.contract.letterbox import letterbox

    batch = letterbox(frame, (320, 320), read_onnx_metadata(graphs["fp32"]).pad_color_bgr)[0][None]
    ref = dict(zip([o.name for o in _session(graphs["fp32"]).get_outputs()],
                   _session(graphs["fp32"]).run(None, {"images": batch})))
    out = dict(zip([o.name for o in _session(graphs["fp16"]).get_outputs()],
                   _session(graphs["fp16"]).run(None, {"images": batch})))
    assert out["detection_boxes"].dtype == np.float32 and out["num_detections"].dtype == np.int32
    assert int(out["num_detections"][0, 0]) == int(ref["num_detections"][0, 0])
    np.testing.assert_allclose(np.sort(out["detection_scores"][0]), np.sort(ref["detection_scores"][0]),
                               rtol=0.02, atol=1e-4)


def _iou(a, b):
    x1, y1 = np.maximum(a[0], b[:, 0]), np.maximum(a[1], b[:, 1])
    x2, y2 = np.minimum(a[2], b[:, 2]), np.minimum(a[3], b[:, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    area = lambda box: (box[..., 2] - box[..., 0]) * (box[..., 3] - box[..., 1])
    return inter / (area(a) + area(b) - inter)


def test_fp16_detections_match_fp32_on_real_images(tmp_path):
    """The trained person detector: every fp32 box above 0.3 has an fp16 twin with IoU >= 0.95."""
    from edge_edet.model.weights import bundled_path
    from edge_edet.runtime import Detector

    weights = bundled_path("person")[1]
    if not os.path.isfile(weights):
        pytest.skip(f"bundled person weights {weights} are absent (trained weights give confident boxes)")
    fp32 = _export(tmp_path / "person.onnx", checkpoint="person")
    fp16 = str(tmp_path / "person_fp16.onnx")
    assert main(["convert", fp32, fp16]) == 0
    folder = shared_path("data", "person_coco", "val")
    frames = [cv2.imread(p) for p in sorted(glob.glob(os.path.join(folder, "*.jpg")))[:8]]
    ref, half = Detector.from_file(fp32), Detector.from_file(fp16)
    checked = 0
    for frame in frames:
        a, b = ref.detect(frame)[0], half.detect(frame)[0]
        for box, score in zip(a.boxes, a.scores):
            if score > 0.3:
                assert len(b.boxes) and _iou(box, b.boxes).max() >= 0.95
                checked += 1
    assert checked > 0


# ---------------------------------------------------------------------------------------- INT8
def test_graphs_pass_the_onnx_checker(graphs):
    """Valid ONNX, nodes in topological order (TensorRT's parser reads them in order)."""
    for key in ("fp16", "int8"):
        onnx.checker.check_model(onnx.load(graphs[key]), full_check=True)


def test_int8_graph_has_qdq_on_every_conv_input_and_none_in_the_tail(graphs):
    model = onnx.load(graphs["int8"])
    producers = _producers(model)
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert convs
    for conv in convs:
        for index in (0, 1):  # activation and weight
            dq = producers.get(conv.input[index])
            assert dq is not None and dq.op_type == "DequantizeLinear", (conv.name, index)
            assert producers[dq.input[0]].op_type == "QuantizeLinear"
        weight_dq = producers[conv.input[1]]
        axis = [a.i for a in weight_dq.attribute if a.name == "axis"]
        weight = inits[producers[weight_dq.input[0]].input[0]]
        assert axis == [0] and inits[weight_dq.input[1]].size == weight.shape[0]  # per-channel
        assert inits[producers[conv.input[0]].input[1]].size == 1  # per-tensor activation
    qdq = [n for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")]
    for node in qdq:
        zero_point = inits[node.input[2]]
        assert zero_point.dtype == np.int8 and not zero_point.any(), node.name
    # nothing quantised after the network: decoding, sigmoid, TopK and NMS read float tensors
    float_model = onnx.load(graphs["fp32"])
    regions = split_regions(float_model)
    tail = set(regions.post)
    for node in model.graph.node:
        if node.name in tail:
            for name in node.input:
                source = producers.get(name)
                assert source is None or source.op_type not in ("QuantizeLinear", "DequantizeLinear"), node.name
    assert all(n.op_type not in ("QuantizeLinear", "DequantizeLinear") for n in model.graph.node
               if n.name in tail)
    assert read_onnx_metadata(graphs["int8"]).precision == "int8"


def test_int8_graph_runs_in_onnxruntime(graphs):
    from edge_edet.runtime import Detector

    detector = Detector.from_file(graphs["int8"])
    result = detector.detect(_frame(1))[0]
    assert result.boxes.dtype == np.float32 and len(result.boxes) > 0
    assert np.isfinite(result.boxes).all() and (result.scores >= 0).all()


def test_int8_mixed_keeps_measured_layers_in_fp16(graphs):
    from edge_edet.precision.calibration_data import load_calibration_images
    from edge_edet.precision.quantize import calibrate, quantize_int8
    from edge_edet.precision.sensitivity import most_sensitive

    model = onnx.load(graphs["fp32"])
    info = read_onnx_metadata(graphs["fp32"])
    images = load_calibration_images(graphs["images"], info, 2, progress=False)
    calibration = calibrate(model, images, "minmax", progress=False)
    convs = {n.name for n in model.graph.node if n.op_type == "Conv"}
    sensitive = most_sensitive(model, calibration, images, count=2)
    assert len(sensitive) >= 2 and set(sensitive) <= convs
    shared = [n.name for n in model.graph.node if n.op_type == "Conv" and "class_net/conv_rep.0/conv_dw" in n.name]
    quantized, _ = quantize_int8(model, images, "minmax", mixed=True, calibration=calibration,
                                 mixed_layers=["/model/backbone/conv_stem/Conv", shared[0]])
    kept = {"/model/backbone/conv_stem/Conv"} | set(shared)  # a shared-weight head layer is kept whole
    assert len(shared) == 5 and set(read_onnx_metadata_from(quantized).extra["int8"]["fp16_layers"]) == kept
    producers = _producers(quantized)
    inits = {i.name: i for i in quantized.graph.initializer}
    for node in quantized.graph.node:
        if node.op_type != "Conv":
            continue
        fed_by_dq = producers[node.input[0]].op_type == "DequantizeLinear"
        assert fed_by_dq == (node.name not in kept), node.name
        if node.name in kept:
            assert inits[node.input[1]].data_type == onnx.TensorProto.FLOAT16
    path = str(graphs["root"] / "mixed.onnx")
    onnx.save(quantized, path)
    outputs = _session(path).run(None, {"images": images[:1]})
    assert outputs[1].dtype == np.float32 and np.isfinite(outputs[1]).all()


def read_onnx_metadata_from(model):
    from edge_edet.contract.metadata import deploy_info_from_onnx_model

    return deploy_info_from_onnx_model(model)


def test_cache_holds_the_same_scales_as_the_qdq_graph(graphs):
    version, algorithm, scales = trt_cache.read_calibration_cache_full(graphs["cache"])
    assert (version, algorithm) == (8502, "EntropyCalibration2")  # every method: what TensorRT's tools read
    model = onnx.load(graphs["int8"])
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    producers = _producers(model)
    float_model = onnx.load(graphs["fp32"])
    regions, cut = network_cut(float_model)
    network_tensors = {name for node in float_model.graph.node if node.name in set(regions.network)
                       for name in node.output}
    assert set(cut) <= set(scales) and set(scales) <= network_tensors | {n.input[0] for n in float_model.graph.node
                                                                        if n.op_type == "Conv"}
    compared = 0
    for conv in (n for n in model.graph.node if n.op_type == "Conv"):
        q = producers[producers[conv.input[0]].input[0]]
        name, scale = q.input[0], float(inits[q.input[1]])
        assert scales[name] == pytest.approx(scale, rel=1e-6)
        compared += 1
    assert compared > 100


def test_cache_format_round_trips_bit_exactly(tmp_path):
    rng = np.random.default_rng(0)
    values = rng.uniform(1e-6, 10.0, 200).astype(np.float32)
    values[:3] = [1.0 / 127.0, np.float32(np.nextafter(np.float32(1), np.float32(2))), np.finfo(np.float32).tiny]
    scales = {f"/tensor/{i}:0 name with spaces": float(v) for i, v in enumerate(values)}
    path = str(tmp_path / "model.calib")
    trt_cache.write_calibration_cache(path, scales, trt_version="10.3.0")
    lines = open(path, encoding="ascii").read().splitlines()
    assert lines[0] == "TRT-100300-EntropyCalibration2"
    for line, (name, value) in zip(lines[1:], scales.items()):
        assert re.fullmatch(r".+: [0-9a-f]{8}", line)
        assert line == f"{name}: {struct.pack('>f', value).hex()}"  # big-endian IEEE-754 bits
    back = trt_cache.read_calibration_cache(path)
    assert list(back) == list(scales)
    assert all(np.float32(back[k]).tobytes() == np.float32(v).tobytes() for k, v in scales.items())
    assert lines[1].endswith("3c010204")  # 1/127, the scale of a tensor with amax 1
    assert trt_cache.trt_version_number("8.5.2") == 8502 and trt_cache.trt_version_number("10.3.0") == 100300
    retargeted = str(tmp_path / "jp5.calib")
    trt_cache.retarget_calibration_cache(path, retargeted, "8.5.2.2")
    assert open(retargeted).readline().strip() == "TRT-8502-EntropyCalibration2"
    assert trt_cache.read_calibration_cache(retargeted) == back


def test_cache_rejects_what_tensorrt_would_misread(tmp_path):
    from edge_edet.contract.errors import EdgeEdetError

    with pytest.raises(EdgeEdetError):
        trt_cache.write_calibration_cache(str(tmp_path / "x.calib"), {"t": 0.0})
    bad = tmp_path / "bad.calib"
    bad.write_text("not a header\nt: 3c010204\n")
    with pytest.raises(EdgeEdetError, match="header"):
        trt_cache.read_calibration_cache(str(bad))


# ------------------------------------------------------------------------- sources and bad input
def test_calibrate_from_a_three_frame_video(graphs, tmp_path, capsys):
    video = str(tmp_path / "three.avi")
    writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*"MJPG"), 5, (320, 240))
    for index in range(3):
        writer.write(cv2.resize(_frame(index), (320, 240)))
    writer.release()
    output = str(tmp_path / "video_int8.onnx")
    code = main(["calibrate", "--model", graphs["fp32"], "--images", video, "--num-images", "10",
                 "--method", "minmax", "--output", output, "--no-progress"])
    assert code == 0 and os.path.isfile(output)
    err = capsys.readouterr().err
    assert "3 usable images" in err and "fewer than the 10" in err
    assert read_onnx_metadata(output).extra["int8"]["calibration_images"] == 3


def test_corrupt_images_are_skipped_counted_and_warned(graphs, tmp_path, capsys):
    from edge_edet.precision.calibration_data import load_calibration_images
    from edge_edet.contract.letterbox import letterbox

    folder = tmp_path / "mixed"
    folder.mkdir()
    for path in _calibration_images(2):
        shutil.copy(path, folder)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    info = read_onnx_metadata(graphs["fp32"])
    images = load_calibration_images(str(folder), info, 3, progress=False)
    err = capsys.readouterr().err
    assert "skipped 1" in err and "2 usable images" in err
    # the runtime's own letterbox of the same file, byte for byte (same pre-processing as Detector)
    expected = letterbox(cv2.imread(_calibration_images(1)[0]), tuple(info.input_size), info.pad_color_bgr)[0]
    assert images.shape == (2,) + tuple(info.input_size) + (3,) and np.array_equal(images[0], expected)


def _fails(args, capsys, output, pattern):
    code = main(args)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.startswith("edge-edet: error: ") and re.search(pattern, err), err
    assert not os.path.exists(output)
    assert not [p for p in os.listdir(os.path.dirname(output)) if p.startswith(".edge_edet-")]  # fileio's temporaries


def test_bad_inputs_give_one_sentence_and_no_output(graphs, tmp_path, capsys):
    output = str(tmp_path / "never.onnx")
    empty = tmp_path / "empty"
    empty.mkdir()
    base = ["--method", "minmax", "--output", output, "--no-progress"]
    _fails(["calibrate", "--model", graphs["fp32"], "--images", str(empty)] + base, capsys, output, "empty|no image")
    foreign = str(tmp_path / "foreign.onnx")
    node = helper.make_node("Relu", ["x"], ["y"])
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), foreign)
    _fails(["calibrate", "--model", foreign, "--images", graphs["images"]] + base, capsys, output,
           "not exported by `edge-edet export`")
    _fails(["calibrate", "--model", graphs["int8"], "--images", graphs["images"]] + base, capsys, output,
           "already quantised")
    _fails(["calibrate", "--model", str(tmp_path / "missing.onnx"), "--images", graphs["images"]] + base, capsys,
           output, "does not exist")
    _fails(["convert", graphs["fp16"], output], capsys, output, "already an fp16 graph")
    _fails(["convert", foreign, output], capsys, output, "not exported by `edge-edet export`")


# ------------------------------------------------------------------------------------ INT8 + FP16
def test_int8_fp16_graph_computes_in_fp16_between_its_int8_layers(graphs, tmp_path):
    """`calibrate --fp16`: the Q/DQ graph with its float compute in float16 (scales and weights fp16, so
    each DequantizeLinear feeds its convolution float16), pre-processing and the tail float32 as in the
    FP16 conversion, fp32 I/O; it runs in ONNX Runtime and follows the plain INT8 graph."""
    from onnx import TensorProto

    out = str(tmp_path / "lite0_int8_fp16.onnx")
    assert main(["calibrate", "--model", graphs["fp32"], "--images", graphs["images"], "--num-images", "4",
                 "--method", "minmax", "--fp16", "--output", out, "--no-progress"]) == 0
    model = onnx.load(out)
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [19]
    plain = onnx.load(graphs["int8"])
    assert io_types(model) == io_types(plain)
    inits = {i.name: i for i in model.graph.initializer}
    producers = _producers(model)
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    for conv in convs:
        for index in (0, 1):
            dq = producers[conv.input[index]]
            assert dq.op_type == "DequantizeLinear" and inits[dq.input[1]].data_type == TensorProto.FLOAT16, conv.name
    typed = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in list(typed.graph.value_info) + list(typed.graph.output)}
    regions = split_regions(onnx.load(graphs["fp32"]))
    float32_nodes = set(regions.float_only)
    for node in model.graph.node:
        for name in node.output:
            if node.name in float32_nodes and types.get(name) in (TensorProto.FLOAT, TensorProto.FLOAT16):
                assert types[name] == TensorProto.FLOAT, f"{node.name} ({node.op_type}) left float32"
    network_out = [types.get(c.output[0]) for c in convs]
    assert network_out.count(TensorProto.FLOAT16) == len(convs)  # every convolution computes in fp16
    extra = read_onnx_metadata(out).extra["int8"]
    casts = sum(1 for n in model.graph.node if n.op_type == "Cast") - sum(1 for n in plain.graph.node
                                                                         if n.op_type == "Cast")
    assert extra["fp16_compute"] is True and extra["fp16_casts_added"] == casts and 0 < casts < 60
    from edge_edet.runtime.backends.onnxruntime_backend import OnnxRuntimeBackend
    from edge_edet.contract.letterbox import letterbox

    image = letterbox(_frame(1), read_onnx_metadata(out).input_size)
    image = (image[0] if isinstance(image, tuple) else image)[None].astype(np.uint8)
    half = OnnxRuntimeBackend(out).infer(image)
    full = OnnxRuntimeBackend(graphs["int8"]).infer(image)
    assert np.abs(half["detection_scores"][0, :20] - full["detection_scores"][0, :20]).max() < 0.05


def test_percentile_ranges_are_the_99_999th_percentile_of_the_values(graphs):
    """The default method's ranges against np.quantile of the very tensors, computed here from the
    network's own outputs (not from the calibrator).  The calibrator reads the quantile off a 1024-bin
    histogram, so a range is checked where the 99.999th and the 99.9th percentiles lie several bins
    apart: it must sit nearer the 99.999th (a calibrator cutting at 99.0 or 99.9 lands nearer the other)."""
    import onnxruntime as ort

    from edge_edet.precision.calibration_data import load_calibration_images
    from edge_edet.precision.quantize import calibrate

    model = onnx.load(graphs["fp32"])
    info = read_onnx_metadata(graphs["fp32"])
    images = load_calibration_images(graphs["images"], info, 2, progress=False)
    ranges = calibrate(model, images, "percentile", progress=False, all_tensors=False).ranges
    names = sorted(ranges)
    probe = onnx.load(graphs["fp32"])
    del probe.graph.output[:]
    probe.graph.output.extend(onnx.helper.make_empty_tensor_value_info(name) for name in names)
    session = ort.InferenceSession(probe.SerializeToString(), providers=["CPUExecutionProvider"])
    values = {name: [] for name in names}
    for image in images:
        for name, array in zip(names, session.run(names, {"images": image[None]})):
            values[name].append(np.asarray(array, np.float64).ravel())
    checked = 0
    for name in names:
        data = np.concatenate(values[name])
        bin_width = 2 * np.abs(data).max() / 1024
        for side, got in ((1, ranges[name][1]), (-1, ranges[name][0])):
            wanted, loose = (np.quantile(data, 0.5 + side * (p / 200.0)) for p in (99.999, 99.9))
            if abs(wanted - loose) > 4 * bin_width:
                assert abs(got - wanted) < abs(got - loose), (name, side, got, wanted, loose)
                checked += 1
    assert checked >= 10, f"only {checked} ranges could tell the 99.999th percentile from the 99.9th"
