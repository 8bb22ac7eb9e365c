"""`edge-edet bench`: statistics, the machine record, the model-alone timing, the eager comparison."""
import json
import subprocess
import sys

import pytest

from edge_edet.bench.eager import eager_checkpoint
from edge_edet.bench.latency import bench_model
from edge_edet.contract.machine import describe_machine, peak_rss_mb
from edge_edet.bench.stats import latency_stats
from edge_edet.cli import main
from edge_edet.contract.errors import EdgeEdetError
from edge_edet.contract.metadata import DeployInfo

from conftest import shared_path

SIZE = 256  # lite0 at 256 keeps the file fast; the deploy contract is the same at any size


@pytest.fixture(scope="module")
def lite0(tmp_path_factory):
    """A lite0 deploy ONNX and the checkpoint it was exported from (random weights, saved first).

    The class head is widened so random weights give real, varied detections (the prior-bias init
    keeps every score near 0.01), which lets the eager comparison check that both sides agree.
    """
    import torch

    import edge_edet
    from edge_edet.export import export_onnx

    folder = tmp_path_factory.mktemp("bench")
    torch.manual_seed(0)
    model = edge_edet.create_model("lite0", input_size=SIZE)
    torch.nn.init.normal_(model.class_net.predict.conv_pw.weight, std=5.0)
    torch.nn.init.constant_(model.class_net.predict.conv_pw.bias, -3.0)
    weights = str(folder / "lite0_random.pth")
    torch.save(model.state_dict(), weights)
    path = str(folder / "lite0.onnx")
    export_onnx(model, path, score_threshold=0.5, weights=weights, log=lambda *_: None)
    return path, weights


def test_latency_stats_percentiles_and_throughput():
    samples = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    stats = latency_stats(samples, batch=2)
    assert stats["iterations"] == 100
    assert stats["median_ms"] == pytest.approx(50.5)
    assert stats["p90_ms"] == pytest.approx(90.1)
    assert stats["p99_ms"] == pytest.approx(99.01)
    assert stats["min_ms"] == 1.0 and stats["max_ms"] == 100.0
    assert stats["throughput_ips"] == pytest.approx(200 / sum(samples), rel=1e-3)
    with pytest.raises(ValueError):
        latency_stats([])


def test_machine_description_names_cpu_cores_and_memory():
    machine = describe_machine()
    assert machine["cpu"] and machine["cpu_count"] >= 1 and 1 <= machine["cpus_usable"] <= machine["cpu_count"]
    assert machine["memory_mb"] > 0 and machine["python"].count(".") == 2
    assert peak_rss_mb() > 10


def test_bench_reports_latency_machine_and_backend_without_importing_torch(lite0, tmp_path):
    model, _ = lite0
    report_path = tmp_path / "bench.json"
    code = ("import sys; from edge_edet.cli import main; "
            f"rc = main(['bench', '--model', {model!r}, '--iterations', '3', '--warmup', '1', '--threads', '1', "
            f"'--output', {str(report_path)!r}]); "
            "assert 'torch' not in sys.modules, 'bench imported torch'; sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    latency = report["latency"]
    assert latency["iterations"] == 3
    assert 0 < latency["min_ms"] <= latency["median_ms"] <= latency["p90_ms"] <= latency["p99_ms"] <= latency["max_ms"]
    assert latency["throughput_ips"] > 0
    from edge_edet.runtime.backends import choose_onnx_backend

    assert report["backend"]["backend"] == choose_onnx_backend(model)  # --backend auto's pick, named in the report
    assert report["machine"]["cpu_count"] >= 1
    assert report["model_info"]["model"] == "lite0" and report["model_info"]["input_size"] == [SIZE, SIZE]
    assert report["batch"] == 1 and report["threads"] == 1 and report["peak_rss_mb"] > 0
    assert "compare_eager" not in report and "gpu_latency" not in report


def test_compare_eager_same_weights_agree_and_memory_is_per_side(lite0, tmp_path, capsys):
    import torch

    model, _ = lite0
    report_path = tmp_path / "compare.json"
    torch_default = torch.get_num_threads()
    # ONNX Runtime: this head's saturated scores tie to 1e-7, where OpenVINO's NMS may break ties another way
    code = main(["bench", "--model", model, "--backend", "onnxruntime", "--iterations", "2", "--warmup", "0",
                 "--compare-eager",
                 "--images", shared_path("data", "coco80_val", "images"), "--output", str(report_path)])
    out = capsys.readouterr().out
    assert code == 0
    report = json.loads(report_path.read_text())
    # no --threads: both sides on one count, torch's default, said out loud
    assert report["threads"] == torch_default and torch.get_num_threads() == torch_default
    assert f"threads: {torch_default} (torch's default here, given to both sides)" in out
    compare = report["compare_eager"]
    assert compare["same_weights"] is True
    assert compare["deployed"]["iterations"] == compare["eager"]["iterations"] == 2
    assert compare["speedup_median"] == pytest.approx(compare["eager"]["median_ms"] / compare["deployed"]["median_ms"],
                                                      rel=1e-2)
    agree = compare["agreement_first_batch"]
    assert agree["detections_deployed"] == agree["detections_eager"] > 0
    assert agree["max_score_difference"] < 1e-3
    for side in ("deployed", "eager"):
        memory = compare["peak_memory"][side]
        assert memory["peak_rss_mb"] >= memory["after_imports_rss_mb"] > 0
    # torch is part of what the eager side costs; the deployed side never loads it
    assert compare["peak_memory"]["eager"]["after_imports_rss_mb"] > compare["peak_memory"]["deployed"]["after_imports_rss_mb"]
    assert "speed-up (median)" in out


def test_oversubscribed_threads_are_warned_about():
    from edge_edet.bench.threads import bench_threads, oversubscription_warning

    assert oversubscription_warning(2, cpus=2, load=0.2) is None  # an idle 2-core machine
    busy = oversubscription_warning(2, cpus=2, load=6.0)
    assert "busy (load average 6.0 on 2 CPUs)" in busy and "--threads 1" in busy
    assert oversubscription_warning(1, cpus=2, load=1.0) is None  # one thread beside one busy core fits
    assert "4 threads on 2 usable CPUs" in oversubscription_warning(4, cpus=2, load=0.0)
    assert bench_threads(3, compare_eager=True) == (3, "--threads")
    assert bench_threads(None, compare_eager=False) == (None, "the back-end's default")


def test_eager_weights_come_from_the_metadata():
    info = DeployInfo(model="lite0", input_size=(SIZE, SIZE), labels=["a"], mean=(1, 1, 1), std=(1, 1, 1),
                      weights="random")
    assert eager_checkpoint(info) == (None, False)
    info.weights = "/nowhere/lite0.pth"
    with pytest.raises(EdgeEdetError, match="--eager-weights"):
        eager_checkpoint(info)
    assert eager_checkpoint(info, "random") == (None, False)
    info.weights = "person"
    assert eager_checkpoint(info) == ("person", True)


class FakeGpuTimingBackend:
    """Named fake of the TensorRT back-end's `time_gpu` (TensorRT cannot be installed here): wraps
    the real ONNX Runtime back-end and adds fixed device timings, to check how bench reports them."""

    GPU_MS = [2.0, 3.0, 4.0]

    def __init__(self, backend):
        self._backend = backend

    def __getattr__(self, name):
        return getattr(self._backend, name)

    def time_gpu(self, batch, iterations, warmup):
        assert batch == 1 and warmup == 0
        return self.GPU_MS[:iterations]


def test_gpu_timings_are_reported_apart_from_host_latency(lite0):
    from edge_edet.bench.latency import synthetic_frames
    from edge_edet.runtime import Detector
    from edge_edet.runtime.backends import open_backend

    detector = Detector(FakeGpuTimingBackend(open_backend(lite0[0])))
    report = bench_model(detector, synthetic_frames(2), batch=1, iterations=3, warmup=0)
    assert report["gpu_latency"]["median_ms"] == pytest.approx(3.0)
    assert report["gpu_latency"]["iterations"] == 3
    assert report["latency"]["iterations"] == 3


def _fails_with_one_sentence(argv, capsys, fragment):
    code = main(argv)
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("edge-edet: error: ") and fragment in err and "\n" not in err


def test_batch_the_model_cannot_run_is_one_sentence(lite0, capsys):
    _fails_with_one_sentence(["bench", "--model", lite0[0], "--batch", "4", "--iterations", "1"], capsys,
                             "fixed batch of 1")


def test_onnx_without_our_metadata_is_one_sentence(tmp_path, capsys):
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["images"], ["out"])], "foreign",
                              [helper.make_tensor_value_info("images", TensorProto.UINT8, [1, 8, 8, 3])],
                              [helper.make_tensor_value_info("out", TensorProto.UINT8, [1, 8, 8, 3])])
    foreign = tmp_path / "foreign.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(foreign))
    _fails_with_one_sentence(["bench", "--model", str(foreign)], capsys, "no edge_edet metadata")


def test_missing_images_folder_is_one_sentence(lite0, tmp_path, capsys):
    _fails_with_one_sentence(["bench", "--model", lite0[0], "--images", str(tmp_path / "absent")], capsys,
                             "does not exist")


def test_source_runs_end_to_end_through_the_streaming_pipeline(lite0, tmp_path, capsys):
    report_path = tmp_path / "source.json"
    code = main(["bench", "--model", lite0[0], "--iterations", "1", "--warmup", "0",
                 "--source", shared_path("data", "video", "cars_short.mp4"), "--max-frames", "6",
                 "--output", str(report_path)])
    out = capsys.readouterr().out
    assert code == 0
    source = json.loads(report_path.read_text())["source"]
    assert source["frames"] == 6 and source["end_to_end_fps"] > 0
    assert "streaming pipeline" in out
