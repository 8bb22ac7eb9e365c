"""scripts/bench_tracking.py, small: a generated MOT ground truth through its noisy synthetic detector.

The full benchmark (TUD-Campus, MOTA / IDF1 from trackers.eval, against trackers.ByteTrackTracker)
needs the benchmark-only `trackers` package; that part runs only where it is installed.
"""
import importlib.util
import json
import os

import numpy as np
import pytest

from conftest import REPO

SCRIPT = os.path.join(REPO, "scripts", "bench_tracking.py")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_tracking", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gt_file(tmp_path_factory):
    """Six walkers on straight paths for 80 frames (MOT15 layout: class -1), two of them crossing."""
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


def test_full_benchmark_prints_one_json_line(bench, gt_file, capsys):
    pytest.importorskip("trackers", reason="benchmark-only: pip install trackers (pulls opencv-python)")
    assert bench.main([gt_file, "--seed", "3"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for side in ("ours", "reference"):
        assert set(report[side]) == {"mota", "idf1", "id_switches", "ms_per_frame"}
    assert report["ours"]["idf1"] > 0.7
