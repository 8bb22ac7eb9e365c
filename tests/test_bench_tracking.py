"""scripts/bench_tracking.py: MOT ground truth (MOT15 and MOT16/17 layouts, told apart by what
their columns mean) through its noisy synthetic detector, our tracker and the reference ByteTrack.

The full benchmark (MOTA / IDF1 from trackers.eval, against trackers.ByteTrackTracker) needs
`trackers` (installed --no-deps by .ci/run and the README's test command: it pins the GUI
opencv-python) and the real TUD sequences come with `motmetrics` (the [test] extra); under
CI=true a missing one fails instead of skipping.
"""
import importlib
import importlib.util
import json
import os

import numpy as np
import pytest

from conftest import REPO, require_module

SCRIPT = os.path.join(REPO, "scripts", "bench_tracking.py")


def need(module: str, reason: str):
    """The module, or a skip with `reason`; in CI (CI=true), where it is installed, a failure."""
    return require_module(module, reason)


def tud(sequence: str) -> str:
    """motmetrics' copy of a real MOT15 ground truth (TUD-Campus, TUD-Stadtmitte)."""
    motmetrics = need("motmetrics", "motmetrics (the [test] extra) ships the TUD sequences")
    return os.path.join(os.path.dirname(motmetrics.__file__), "data", sequence, "gt.txt")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_tracking", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def walkers():
    rng = np.random.default_rng(1)
    for pid in range(1, 7):
        x0, y0 = rng.uniform(50, 500), rng.uniform(50, 300)
        vx, vy = rng.uniform(-4, 4), rng.uniform(-1, 1)
        for f in range(1, 81):
            yield f, pid, x0 + vx * f, y0 + vy * f


@pytest.fixture(scope="module")
def mot17_file(tmp_path_factory):
    """The same six walkers in the MOT16/17 layout (conf, class, visibility), plus what a MOT17
    ground truth also holds: an ignored row (conf 0) per frame and a parked car (class 3)."""
    rows = [f"{f},{pid},{x:.1f},{y:.1f},40,100,1,1,0.8" for f, pid, x, y in walkers()]
    for f in range(1, 81):
        rows.append(f"{f},20,600,50,30,60,0,1,0.1")  # a pedestrian too small to count: ignore
        rows.append(f"{f},21,300,400,120,60,1,3,1")  # a car: not a pedestrian
    path = tmp_path_factory.mktemp("gt17") / "gt.txt"
    path.write_text("\n".join(rows) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def gt_file(tmp_path_factory):
    """Six walkers on straight paths for 80 frames (MOT15 layout, world coordinates -1), two of them crossing."""
    rng = np.random.default_rng(1)
    rows = []
    for pid in range(1, 7):
        x0, y0 = rng.uniform(50, 500), rng.uniform(50, 300)
        vx, vy = rng.uniform(-4, 4), rng.uniform(-1, 1)
        for f in range(1, 81):
            rows.append(f"{f},{pid},{x0 + vx * f:.1f},{y0 + vy * f:.1f},40,100,1,-1,-1,-1")
    path = tmp_path_factory.mktemp("gt") / "gt.txt"
    path.write_text("\n".join(rows) + "\n")
    return str(path)


def test_synthetic_detector_follows_its_flags(bench, gt_file):
    gt = bench.load_gt(gt_file)
    assert len(gt) == 80 and all(len(ids) == 6 for ids, _ in gt.values())
    dets = bench.synthetic_detections(gt, miss=0.15, jitter=0.04, fp_every=3, seed=7)
    counts = np.array([len(s) for _, s in dets.values()])
    false_positives = 80 // 3
    kept = counts.sum() - false_positives
    assert 0.75 * 480 < kept < 0.95 * 480  # about 15% of the 480 boxes missed
    scores = np.concatenate([s for _, s in dets.values()])
    assert scores.min() >= 0.3 and scores.max() <= 0.95
    assert bench.synthetic_detections(gt, 0.15, 0.04, 3, 7)[5][0] == pytest.approx(dets[5][0])  # seeded


def test_our_tracker_keeps_identities_under_the_benchmark_noise(bench, gt_file):
    """Each ground-truth walker is covered mostly by one track ID (a simple IDF1-like purity)."""
    gt = bench.load_gt(gt_file)
    dets = bench.synthetic_detections(gt, miss=0.15, jitter=0.04, fp_every=3, seed=7)
    rows, _ = bench.run_ours(dets, fps=30)
    from edge_edet.runtime.analytics.geometry import iou_matrix

    by_truth = {}
    for frame, tid, box in rows:
        ids, boxes = gt[frame]
        iou = iou_matrix(np.asarray(box)[None], boxes)[0]
        if iou.max() >= 0.5:
            by_truth.setdefault(int(ids[iou.argmax()]), []).append(tid)
    assert len(by_truth) == 6
    purity = [max(np.bincount(t)) / 80 for t in by_truth.values()]
    assert min(purity) > 0.7 and np.mean(purity) > 0.8


def test_layouts_are_told_apart_by_what_the_columns_mean(bench, gt_file, mot17_file, tmp_path):
    mot15, mot17 = [], []
    gt15, gt17 = bench.load_gt(gt_file, mot15), bench.load_gt(mot17_file, mot17)
    assert mot15 == ["MOT15"] and mot17 == ["MOT16/17"]
    # the ignored row and the car are left out of MOT16/17: the same six walkers as the MOT15 file
    assert sorted(gt15) == sorted(gt17) == list(range(1, 81))
    for frame in gt15:
        assert gt17[frame][0].tolist() == gt15[frame][0].tolist() == [1, 2, 3, 4, 5, 6]
        assert np.allclose(gt17[frame][1], gt15[frame][1])
    bad = tmp_path / "bad.txt"
    bad.write_text("1,1,10,10,5,5,1,0.7,3\n")  # 9 columns, but column 8 is no class id
    with pytest.raises(SystemExit, match="column 8 is not a class id"):
        bench.load_gt(str(bad))
    bad.write_text("1,1,10,10,5,5,1,1\n")
    with pytest.raises(SystemExit, match="8 columns, which is no MOT layout"):
        bench.load_gt(str(bad))


@pytest.mark.parametrize("sequence, frames", [("TUD-Stadtmitte", 179), ("TUD-Campus", 71)])
def test_real_mot15_files_keep_every_box(bench, sequence, frames):
    """TUD-Stadtmitte's columns 8-10 are real world coordinates (4.4852, ...), not a class: all kept."""
    path = tud(sequence)
    table = np.loadtxt(path, delimiter=",", ndmin=2)
    layout = []
    gt = bench.load_gt(path, layout)
    assert layout == ["MOT15"] and table.shape[1] == 10
    assert len(gt) == frames and sum(len(ids) for ids, _ in gt.values()) == len(table)


@pytest.mark.parametrize("ground_truth, layout", [("TUD-Stadtmitte", "MOT15"), ("generated", "MOT16/17")])
def test_full_benchmark_against_the_reference_bytetrack(bench, mot17_file, ground_truth, layout, capsys):
    need("trackers", "the reference ByteTrack: pip install --no-deps trackers==2.6.1 (it pins opencv-python)")
    path = tud(ground_truth) if ground_truth.startswith("TUD") else mot17_file
    assert bench.main([path, "--seed", "3"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["setup"]["layout"] == layout
    for side in ("ours", "reference"):
        assert set(report[side]) == {"mota", "idf1", "id_switches", "ms_per_frame"}
        assert 0.5 < report[side]["mota"] <= 1.0  # scored on the boxes the file holds, not on none
    assert report["ours"]["idf1"] > 0.7
