"""Stream analytics: tracker, line counting, zones, the smoothed rate, the --line/--zone text.

Synthetic scenes: boxes moving on known paths (seeded detector noise), so counts and identities
are known exactly.  Speed is measured in scripts/bench_tracking.py, never here.
"""
import numpy as np
import pytest

from edge_edet.contract.errors import EdgeEdetError
from edge_edet.runtime.analytics import (ByteTracker, Line, LineCounter, SmoothedRate, StreamAnalytics, Zone,
                                         ZoneCounter, parse_line, parse_zone)
from edge_edet.runtime.analytics.geometry import iou_matrix, points_in_polygon, resolve
from edge_edet.runtime.analytics.kalman import KalmanBank

W, H = 640, 480


def box_at(x, bottom, w=40, h=80):
    """A box whose bottom centre (the counting anchor) is at (x, bottom)."""
    return [x - w / 2, bottom - h, x + w / 2, bottom]


def walk(start, end, frames):
    return list(np.linspace(start, end, frames))


def scene():
    """Per object: class, x, and the anchor's y in each frame (None: not in view)."""
    n = 120
    a = walk(100, 400, 60) + [None] * (n - 60)  # down across the line: in
    b = [None] * 10 + walk(420, 80, 70) + [None] * 40  # up: out
    c = walk(100, 380, 40) + walk(380, 100, 40) + [None] * 40  # down then back up: in + out
    jitter = [234.0 + 12 * (k % 2) for k in range(30)]  # 234, 246, 234, ... on the line for 30 frames
    d = walk(100, 234, 30) + jitter + walk(246, 400, 30) + [None] * 30  # jitters on the line, then down: in once
    e = [None] * 20 + walk(90, 420, 60) + [None] * 40  # a car, down: in
    return n, [("person", 0, 60, a), ("person", 0, 160, b), ("person", 0, 260, c), ("person", 0, 400, d),
               ("car", 1, 540, e)]


def detections(n, objects, rng, noise=1.5):
    for frame in range(n):
        boxes, scores, classes, labels, truth = [], [], [], [], []
        for obj_id, (label, cid, x, ys) in enumerate(objects):
            y = ys[frame]
            if y is None:
                continue
            w, h = (80, 50) if label == "car" else (40, 80)
            boxes.append(np.array(box_at(x, y, w, h)) + rng.normal(0, noise, 4))
            scores.append(rng.uniform(0.6, 0.95))
            classes.append(cid)
            labels.append(label)
            truth.append(obj_id)
        yield frame, np.array(boxes).reshape(-1, 4), np.array(scores), np.array(classes, int), labels, truth


def test_synthetic_scene_gives_exact_line_counts_per_direction_and_class():
    n, objects = scene()
    door = Line((0, 240), (W, 240), "door")
    gate = Line((320, 0), (320, 200), "gate")  # nothing crosses x=320 above y=200: stays at zero
    analytics = StreamAnalytics(fps=10, lines=[door, gate])
    for frame, boxes, scores, classes, labels, _ in detections(n, objects, np.random.default_rng(3)):
        analytics.update(boxes, scores, classes, labels, frame_index=frame, timestamp=frame / 10)
    counts = analytics.counts()
    assert counts["lines"]["door"] == {"in": 4, "out": 2, "by_class": {"car": {"in": 1, "out": 0},
                                                                        "person": {"in": 3, "out": 2}}}
    assert counts["lines"]["gate"]["in"] == 0 and counts["lines"]["gate"]["out"] == 0
    assert counts["tracks"] == 5


def test_a_track_jittering_across_the_line_is_counted_once():
    counter = LineCounter(Line((0, 240), (W, 240), "door"))
    tracker = ByteTracker(fps=10)
    ys = walk(150, 236, 15) + [236 + 8 * (k % 2) for k in range(40)] + walk(244, 330, 15)  # 236/244 across y=240
    for frame, y in enumerate(ys):
        result = tracker.update([box_at(300, y)], [0.9], [0], ["person"], frame_index=frame)
        counter.update(result.ids, result.boxes, result.labels)
    assert counter.counts()["in"] == 1 and counter.counts()["out"] == 0


def test_a_track_that_turns_back_before_the_dead_band_is_not_counted():
    counter = LineCounter(Line((0, 240), (W, 240), "door"))
    tracker = ByteTracker(fps=10)
    for frame, y in enumerate(walk(150, 244, 20) + walk(244, 150, 20)):  # touches the line, goes back
        result = tracker.update([box_at(300, y)], [0.9], [0], ["person"], frame_index=frame)
        counter.update(result.ids, result.boxes, result.labels)
    assert counter.counts()["in"] == 0 and counter.counts()["out"] == 0


def test_ids_stay_stable_through_missed_detections_and_a_crossing():
    """Two people walk past each other (boxes overlap for a few frames), 15% of boxes missed."""
    rng = np.random.default_rng(11)
    tracker = ByteTracker(fps=10)
    seen = {0: set(), 1: set()}
    for frame in range(60):
        gt = [box_at(100 + 6 * frame, 300), box_at(460 - 6 * frame, 310)]
        keep = [k for k in range(2) if rng.random() >= 0.15]
        boxes = [np.array(gt[k]) + rng.normal(0, 1.5, 4) for k in keep]
        result = tracker.update(boxes, [0.9] * len(keep), [0] * len(keep), frame_index=frame)
        for k, tid in zip(keep, result.track_ids):
            if tid >= 0:
                seen[k].add(int(tid))
    assert len(seen[0]) == 1 and len(seen[1]) == 1 and seen[0] != seen[1]


def test_low_score_detections_keep_an_occluded_track_alive():
    tracker = ByteTracker(fps=10)
    ids = []
    for frame in range(30):
        score = 0.3 if 10 <= frame < 20 else 0.9  # occluded: below the 0.4 high threshold
        result = tracker.update([box_at(100 + 4 * frame, 300)], [score], [0], frame_index=frame)
        ids.append(int(result.track_ids[0]))
    assert set(ids) == {1}  # tracked through the low-score frames, same ID
    # a low-score detection alone never starts a track
    fresh = ByteTracker(fps=10)
    assert all(fresh.update([box_at(300, 300)], [0.3], [0], frame_index=f).track_ids[0] == -1 for f in range(5))


@pytest.mark.parametrize("fps,gap,same", [(10, 8, True), (10, 15, False), (30, 15, True)])
def test_lost_buffer_is_one_second_of_the_source_frames(fps, gap, same):
    tracker = ByteTracker(fps=fps)
    ids = []
    for frame in list(range(10)) + list(range(10 + gap, 20 + gap)):
        ids.append(int(tracker.update([box_at(200, 300)], [0.9], [0], frame_index=frame).track_ids[0]))
    assert (len(set(ids) - {-1}) == 1) is same


def test_tracks_are_per_class():
    tracker = ByteTracker(fps=10)
    person = [int(tracker.update([box_at(200, 300)], [0.9], [0], frame_index=f).track_ids[0]) for f in range(5)]
    car = [int(tracker.update([box_at(200, 300)], [0.9], [1], frame_index=f).track_ids[0]) for f in range(5, 10)]
    assert set(person) == {1} and 1 not in car and car[-1] > 1


def test_a_one_frame_false_positive_gets_no_id():
    tracker = ByteTracker(fps=10)
    tracker.update([box_at(100, 300)], [0.9], [0], frame_index=0)
    result = tracker.update([box_at(100, 300), box_at(500, 300)], [0.9, 0.9], [0, 0], frame_index=1)
    assert result.track_ids[1] == -1
    result = tracker.update([box_at(100, 300)], [0.9], [0], frame_index=2)
    assert tracker.confirmed_total == 1


def test_zone_occupancy_and_dwell_follow_source_time():
    zone = ZoneCounter(Zone(((200, 200), (400, 200), (400, 400), (200, 400)), "desk"))
    tracker = ByteTracker(fps=10)
    occupancy = []
    for frame in range(60):
        x = 100 + 5 * frame  # anchor x: inside 200..400 from frame 20 to frame 60 (exclusive)
        result = tracker.update([box_at(x, 300), box_at(600, 300)], [0.9, 0.9], [0, 0], ["person"] * 2,
                                frame_index=frame)
        zone.update(result.ids, result.boxes, result.labels, timestamp=frame / 10)
        occupancy.append(zone.counts()["occupancy"])
    assert occupancy[19] == 0 and occupancy[21] == 1 and max(occupancy) == 1
    counts = zone.counts()
    assert counts["visits"] == 1 and counts["by_class"] == {"person": 1}
    assert list(counts["dwell_s"].values()) == [pytest.approx(3.9, abs=0.15)]  # frames 20..59 at 10 fps
    for frame in range(60, 75):
        result = tracker.update([box_at(100 + 5 * frame, 300)], [0.9], [0], ["person"], frame_index=frame)
        zone.update(result.ids, result.boxes, result.labels, timestamp=frame / 10)
    counts = zone.counts()
    assert counts["occupancy"] == 0 and counts["dwell_s"] == {}
    assert counts["mean_dwell_s"] == pytest.approx(3.9, abs=0.15)


def test_mean_and_max_dwell_agree_from_the_first_frame():
    zone = ZoneCounter(Zone(((200, 200), (400, 200), (400, 400), (200, 400)), "desk"))
    tracker = ByteTracker(fps=10)
    result = tracker.update([box_at(300, 300)], [0.9], [0], ["person"], frame_index=0)
    zone.update(result.ids, result.boxes, result.labels, timestamp=0.0)
    counts = zone.counts()
    assert counts["occupancy"] == 1 and counts["mean_dwell_s"] == 0.0 and counts["max_dwell_s"] == 0.0
    for frame in range(1, 11):  # one open visit: mean = max = its dwell so far
        result = tracker.update([box_at(300, 300)], [0.9], [0], ["person"], frame_index=frame)
        zone.update(result.ids, result.boxes, result.labels, timestamp=frame / 10)
    counts = zone.counts()
    assert counts["mean_dwell_s"] == counts["max_dwell_s"] == pytest.approx(1.0)
    empty = ZoneCounter(Zone(((200, 200), (400, 200), (400, 400), (200, 400)), "desk")).counts()
    assert empty["mean_dwell_s"] is None and empty["max_dwell_s"] is None  # no visit yet


def test_kalman_learns_a_constant_velocity():
    bank = KalmanBank()
    bank.add(np.array([[0, 0, 10, 20]]))
    for k in range(1, 20):
        bank.predict()
        bank.update(np.array([0]), np.array([[3 * k, 0, 3 * k + 10, 20]]))
    bank.predict(steps=5)  # five frames unseen: still moving at 3 px per frame
    assert bank.boxes()[0] == pytest.approx([3 * 24, 0, 3 * 24 + 10, 20], abs=0.5)


def test_geometry_helpers():
    assert iou_matrix([[0, 0, 10, 10]], [[5, 0, 15, 10], [20, 20, 30, 30]])[0] == pytest.approx([1 / 3, 0])
    assert points_in_polygon(np.array([[2, 2], [9, 9]]), np.array([[0, 0], [10, 0], [0, 10]])).tolist() == [True, False]
    line = Line((0, 100), (100, 100))
    assert line.signed_distance(np.array([[50, 120], [50, 90]])).tolist() == [20, -10]  # below the line is 'in'


def test_smoothed_rate_does_not_jump_on_a_burst():
    rate = SmoothedRate(time_constant=1.0)
    now = 0.0
    for _ in range(60):  # steady 20 FPS
        now += 0.05
        rate.tick(now)
    assert rate.rate == pytest.approx(20, rel=0.02)
    for _ in range(3):  # three queued frames drain at once (the raw rate reads hundreds of FPS)
        now += 0.001
        rate.tick(now)
    assert rate.rate < 25
    for _ in range(60):  # a real change (10 FPS) shows within a few seconds
        now += 0.1
        rate.tick(now)
    assert rate.rate == pytest.approx(10, rel=0.1)


# -- the user's text ---------------------------------------------------------------------------
def test_line_and_zone_text_in_pixels_or_fractions():
    line = resolve([parse_line("0,0.5,1,0.5,door")], W, H)[0]
    assert (line.p1, line.p2, line.name) == ((0.0, 240.0), (640.0, 240.0), "door")
    line = resolve([parse_line("10, 20, 600, 20")], W, H)[0]
    assert (line.p1, line.p2, line.name) == ((10.0, 20.0), (600.0, 20.0), "line1")
    zone = resolve([parse_zone("0.1,0.1,0.5,0.1,0.5,0.5", index=1)], W, H)[0]
    assert zone.points == ((64.0, 48.0), (320.0, 48.0), (320.0, 240.0)) and zone.name == "zone2"


@pytest.mark.parametrize("parse,text,words", [
    (parse_line, "1,2,3", "expected 4 numbers"),
    (parse_line, "1,2,3,4,5", "expected 4 numbers"),
    (parse_line, "a,b,c,d", "comma-separated numbers"),
    (parse_line, "5,5,5,5", "same point"),
    (parse_line, "-1,0,10,10", "negative"),
    (parse_zone, "0,0,10,10", "at least 3 points"),
    (parse_zone, "0,0,10,10,5", "odd count"),
])
def test_bad_line_and_zone_text_is_one_sentence(parse, text, words):
    with pytest.raises(EdgeEdetError, match=words):
        parse(text)


def test_points_outside_the_frame_and_duplicate_names_are_refused():
    with pytest.raises(EdgeEdetError, match=r"outside the 640x480 frame"):
        resolve([parse_line("0,100,700,100")], W, H)
    with pytest.raises(EdgeEdetError, match="used twice"):
        resolve([parse_line("0,1,1,1,a"), parse_zone("0,0,1,0,1,1,a")], W, H)


def test_kalman_blocks_equal_the_full_8x8_filter():
    """The per-coordinate 2x2 form is exact: same numbers as textbook 8x8 matrices."""
    from edge_edet.runtime.analytics.kalman import POSITION_STD as P, VELOCITY_STD as V, boxes_to_measurements
    rng = np.random.default_rng(0)
    box = np.array([[100.0, 50.0, 140.0, 130.0]])
    bank = KalmanBank()
    bank.add(box)
    z = boxes_to_measurements(box)[0]
    s = np.array([z[2], z[3], z[2], z[3]])
    x = np.concatenate([z, np.zeros(4)])
    cov = np.diag(np.concatenate([(2 * P * s) ** 2, (10 * V * s) ** 2]))
    h = np.hstack([np.eye(4), np.zeros((4, 4))])
    for step in (1, 3, 1):
        f = np.eye(8)
        f[:4, 4:] = np.eye(4) * step
        s = np.maximum(np.array([x[2], x[3], x[2], x[3]]), 1.0)
        x, cov = f @ x, f @ cov @ f.T + np.diag(np.concatenate([(P * s) ** 2, (V * s) ** 2])) * step
        bank.predict(step)
        measured = box + rng.normal(0, 3, (1, 4)) + 4 * step
        zm = boxes_to_measurements(measured)[0]
        s = np.maximum(np.array([x[2], x[3], x[2], x[3]]), 1.0)
        gain = cov @ h.T @ np.linalg.inv(h @ cov @ h.T + np.diag((P * s) ** 2))
        x, cov = x + gain @ (zm - h @ x), (np.eye(8) - gain @ h) @ cov
        bank.update(np.array([0]), measured)
        assert np.concatenate([bank.pos[0], bank.vel[0]]) == pytest.approx(x, rel=1e-9, abs=1e-9)
        assert bank.p_pp[0] == pytest.approx(np.diag(cov)[:4], rel=1e-9)
        assert bank.p_pv[0] == pytest.approx(np.diag(cov[:4, 4:]), rel=1e-9, abs=1e-12)
