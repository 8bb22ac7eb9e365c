"""Deploy ONNX: the graph in ONNX Runtime equals our PyTorch model + reference post-processing."""
import glob
import os
import subprocess
import sys
from collections import Counter

import cv2
import numpy as np
import onnx
import pytest
import torch

from edge_edet.contract.errors import EdgeEdetError
from edge_edet.export import export_onnx
from edge_edet.export.nms import TRT_TOPK_LIMIT
from edge_edet.contract.metadata import MetadataError, read_onnx_metadata
from edge_edet.model import create_model
from edge_edet.model.reference import reference_detect
from edge_edet.runtime import Detector

from conftest import REPO, shared_path

LITE0 = ("fixtures", "effdet", "tf_efficientdet_lite0_random.pth")
D0 = ("fixtures", "effdet", "tf_efficientdet_d0_random.pth")


def _export(tmp_path_factory, name, checkpoint, filename, **options):
    model = create_model(name, checkpoint=shared_path(*checkpoint), input_size=options.pop("input_size", None))
    path = str(tmp_path_factory.mktemp("onnx") / filename)
    options.setdefault("score_threshold", 0.0)
    export_onnx(model, path, log=lambda *_: None, **options)
    return model, path


@pytest.fixture(scope="module")
def lite0_static(tmp_path_factory):
    return _export(tmp_path_factory, "lite0", LITE0, "lite0.onnx")


@pytest.fixture(scope="module")
def lite0_dynamic(tmp_path_factory):
    return _export(tmp_path_factory, "lite0", LITE0, "lite0_dyn.onnx", dynamic_batch=4)


def coco_images(count):
    paths = sorted(glob.glob(os.path.join(shared_path("data", "coco80_val", "images"), "*.jpg")))[:count]
    return [cv2.imread(p) for p in paths]


def reference_on_batch(model, batch_uint8):
    """The PyTorch model + reference post-processing on the same letterboxed uint8 input."""
    cfg = model.config
    x = torch.from_numpy(batch_uint8).float()[..., [2, 1, 0]]
    x = (x - torch.tensor(cfg.mean) * 255) / (torch.tensor(cfg.std) * 255)
    return reference_detect(model, x.permute(0, 3, 1, 2).contiguous())


def box_iou(a, b):
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area = lambda r: np.prod(r[:, 2:] - r[:, :2], axis=1)
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def assert_same_detections(reference, graph_boxes, graph_scores, graph_classes):
    """Every reference detection whose score stands > 1e-4 clear of its neighbours is in the graph's."""
    boxes, scores, classes = reference
    assert len(graph_scores) == len(scores)
    gaps = np.abs(np.diff(scores))
    clear = np.ones(len(scores), bool)
    clear[:-1] &= gaps > 1e-4
    clear[1:] &= gaps > 1e-4
    assert clear.sum() >= 1, "no stable detections to compare"
    iou = box_iou(boxes[clear], graph_boxes)
    for row, (klass, score) in enumerate(zip(classes[clear], scores[clear])):
        match = (iou[row] >= 0.99) & (graph_classes == klass) & (np.abs(graph_scores - score) < 1e-4)
        assert match.any(), (boxes[clear][row], klass, score)


def graph_rows(outputs, index):
    n = int(outputs["num_detections"][index, 0])
    assert not outputs["detection_scores"][index, n:].any() and not outputs["detection_boxes"][index, n:].any()
    return (outputs["detection_boxes"][index, :n], outputs["detection_scores"][index, :n],
            outputs["detection_classes"][index, :n])


@pytest.mark.parametrize("name,checkpoint", [("lite0", LITE0), ("d0", D0)])
def test_golden_input_matches_reference(tmp_path_factory, name, checkpoint):
    model, path = _export(tmp_path_factory, name, checkpoint, f"{name}.onnx")
    io = np.load(shared_path("fixtures", "effdet", f"tf_efficientdet_{name}_io.npz"))
    batch = io["input_bgr_uint8"][None]
    outputs = Detector.from_file(path).infer(batch)
    assert outputs["num_detections"].dtype == np.int32 and outputs["detection_classes"].dtype == np.int32
    assert outputs["detection_boxes"].shape == (1, 100, 4)
    assert_same_detections(reference_on_batch(model, batch)[0], *graph_rows(outputs, 0))


def test_real_images_at_natural_sizes(lite0_static):
    model, path = lite0_static
    detector = Detector.from_file(path)
    for frame in coco_images(3):
        batch, scales = detector.preprocess([frame])
        outputs = detector.infer(batch)
        assert_same_detections(reference_on_batch(model, batch)[0], *graph_rows(outputs, 0))
        result = detector.postprocess(outputs, scales, [frame.shape])[0]
        assert (result.boxes[:, 2] <= frame.shape[1] + 1e-3).all() and (result.boxes[:, 3] <= frame.shape[0] + 1e-3).all()
        assert result.labels[0] == detector.labels[result.class_ids[0]]


def test_dynamic_batch_gives_each_image_its_own_results(lite0_dynamic):
    model, path = lite0_dynamic
    detector = Detector.from_file(path)
    frames = coco_images(4)
    batch, _ = detector.preprocess(frames)
    outputs = detector.infer(batch)
    references = reference_on_batch(model, batch)
    for index in range(4):
        assert_same_detections(references[index], *graph_rows(outputs, index))
    for size in range(1, 5):  # every batch from 1 to MAX runs
        out = detector.infer(np.ascontiguousarray(batch[:size]))
        assert out["detection_boxes"].shape == (size, 100, 4)
        np.testing.assert_array_equal(out["num_detections"], outputs["num_detections"][:size])


def test_non_square_input(tmp_path_factory):
    model, path = _export(tmp_path_factory, "lite0", LITE0, "lite0_384x640.onnx", input_size="384x640")
    detector = Detector.from_file(path)
    assert detector.input_size == (384, 640)
    frame = coco_images(1)[0]
    batch, _ = detector.preprocess([frame])
    assert_same_detections(reference_on_batch(model, batch)[0], *graph_rows(detector.infer(batch), 0))


def test_static_graph_has_no_shape_or_pad_chains(lite0_static):
    ops = Counter(node.op_type for node in onnx.load(lite0_static[1]).graph.node)
    assert ops["Shape"] == 0 and ops["Pad"] == 0 and ops["NonMaxSuppression"] == 1
    graph = onnx.load(lite0_static[1]).graph
    constants = {i.name for i in graph.initializer} | {o for n in graph.node if n.op_type == "Constant" for o in n.output}
    for node in graph.node:
        if node.op_type == "Gather" and not node.name.startswith("nms/"):
            assert node.input[1] in constants, node.name  # constant-index gathers only
    onnx.checker.check_model(onnx.load(lite0_static[1]))


def test_metadata_travels_with_the_graph(lite0_static):
    info = read_onnx_metadata(lite0_static[1])
    assert info.model == "lite0" and info.input_size == (320, 320) and len(info.labels) == 90
    assert info.labels[0] == "person" and info.nms == "onnx" and info.mean == (127.5, 127.5, 127.5)


def test_topk_cascade_is_exact_beyond_tensorrt_limit(tmp_path_factory):
    model, path = _export(tmp_path_factory, "lite0", LITE0, "lite0_topk.onnx", pre_nms_top_k=2 * TRT_TOPK_LIMIT + 100)
    graph = onnx.load(path).graph
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}
    ks = [int(constants[n.input[1]][0]) for n in graph.node if n.op_type == "TopK"]
    assert max(ks) <= TRT_TOPK_LIMIT and len(ks) > 3  # chunked, never over TensorRT's limit
    frame = coco_images(1)[0]
    detector = Detector.from_file(path)
    batch, _ = detector.preprocess([frame])
    reference = reference_on_batch(model, batch)  # reference uses top 5000 (fewer is a subset: same NMS winners)
    assert_same_detections(reference[0], *graph_rows(detector.infer(batch), 0))


def _core(path, outputs):
    from onnx.utils import Extractor

    model = onnx.load(path)
    return Extractor(model).extract_model(["images"], outputs)


def test_efficientnms_graph(tmp_path_factory, lite0_static):
    _, path = _export(tmp_path_factory, "lite0", LITE0, "lite0_enms.onnx", nms="efficientnms", score_threshold=0.3)
    graph = onnx.load(path).graph
    node = [n for n in graph.node if n.op_type == "EfficientNMS_TRT"]
    assert len(node) == 1
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node[0].attribute}
    assert attrs["plugin_version"] == b"1" and attrs["background_class"] == -1 and attrs["max_output_boxes"] == 100
    assert attrs["score_activation"] == 1 and attrs["box_coding"] == 0 and attrs["class_agnostic"] == 0
    assert abs(attrs["score_threshold"] - 0.3) < 1e-6 and abs(attrs["iou_threshold"] - 0.5) < 1e-6
    assert list(node[0].output) == ["num_detections", "detection_boxes", "detection_scores", "detection_classes"]
    shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim] for v in onnx.shape_inference.infer_shapes(
        _core(path, list(node[0].input))).graph.output}
    assert shapes == {"core_boxes": [1, 19206, 4], "core_logits": [1, 19206, 90]}
    # the graph before the plugin equals the ONNX-NMS graph's core
    a, b = _core(path, ["core_boxes", "core_logits"]), _core(lite0_static[1], ["core_boxes", "core_logits"])
    assert [(n.op_type, list(n.input), list(n.output)) for n in a.graph.node] == \
           [(n.op_type, list(n.input), list(n.output)) for n in b.graph.node]
    for x, y in zip(sorted(a.graph.initializer, key=lambda t: t.name), sorted(b.graph.initializer, key=lambda t: t.name)):
        assert x.name == y.name and np.array_equal(onnx.numpy_helper.to_array(x), onnx.numpy_helper.to_array(y))


def test_no_nms_graph_uses_the_shared_numpy_path(tmp_path_factory, lite0_static):
    _, path = _export(tmp_path_factory, "lite0", LITE0, "lite0_none.onnx", nms="none")
    frame = coco_images(1)[0]
    with_nms = Detector.from_file(lite0_static[1]).detect(frame)[0]
    without = Detector.from_file(path).detect(frame)[0]
    assert len(without) == len(with_nms)
    iou = box_iou(with_nms.boxes[:10], without.boxes[:10])
    assert (iou.max(axis=1) > 0.99).all()


def test_failed_export_leaves_no_file(tmp_path):
    model = create_model("lite0")
    target = tmp_path / "bad.onnx"
    with pytest.raises(EdgeEdetError):
        export_onnx(model, str(target), log=lambda *_: None, max_detections=0)
    assert list(tmp_path.iterdir()) == []


def test_runtime_rejects_foreign_onnx(tmp_path):
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["y"])], "foreign",
                              [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, 4, 4, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.UINT8, [1, 4, 4, 3])])
    path = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph), str(path))
    with pytest.raises(MetadataError, match="not exported by `edge-edet export`"):
        Detector.from_file(str(path))


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "edge_edet", *args], capture_output=True, text=True, cwd=REPO)


@pytest.mark.parametrize("args,message", [
    (["--model", "d9"], "unknown model 'd9'"),
    (["--model", "d0", "--input-size", "500"], "nearest valid sizes: 384 or 512"),
    (["--model", "lite0", "--weights", "/no/such.pth"], "does not exist"),
    (["--model", "lite0", "--weights", __file__], "not a readable PyTorch checkpoint"),
])
def test_export_bad_input_is_one_sentence(tmp_path, args, message):
    result = _cli("export", *args, "--output", str(tmp_path / "x.onnx"))
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.onnx").exists()


def test_export_to_missing_folder(tmp_path):
    result = _cli("export", "--model", "lite0", "--output", str(tmp_path / "missing" / "x.onnx"))
    assert result.returncode == 2 and "does not exist" in result.stderr and "Traceback" not in result.stderr


def test_runtime_never_imports_torch():
    code = "import sys, edge_edet.runtime, edge_edet.runtime.backends.onnxruntime_backend; print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO)
    assert result.stdout.strip() == "False", result.stderr
