"""ByteTrack-style multi-object tracker: stable IDs per class from per-frame detections.

Each frame: predict every track with its Kalman state; match confident detections to confirmed
tracks on IoU (Hungarian); then match the leftover tracks that were seen last frame to the
low-score detections (an occluded person's score dips before it vanishes: ByteTrack's point);
then new tracks from last frame's unconfirmed ones.  A track needs a second sighting to get an
ID (a one-frame false positive never shows up), and a lost track is kept for `lost_seconds` of
the source's frames so an object that comes back after an occlusion keeps its ID.  Matching is
per class: a person never inherits a car's ID.  Track attributes are arrays aligned with the
Kalman bank's rows, so a frame costs a few array operations, not a Python loop per track.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Deque, Dict, List, Optional, Tuple

import numpy as np

from ...contract.errors import EdgeEdetError
from .geometry import anchor_points, iou_matrix
from .kalman import KalmanBank

DEFAULT_FPS = 30.0
TRAIL_LENGTH = 30  # anchor points kept per track for the overlay's trail


@dataclass
class TrackerSettings:
    """The association thresholds: ByteTrack's published IoU gates; score split 0.1 higher than
    ByteTrack's 0.5 / 0.6 would put it, at 0.4 / 0.5, because the deploy graph's own score
    threshold defaults to 0.4 (so whatever the graph reports may be matched first) and because
    scripts/bench_tracking.py scores it higher (mean IDF1 0.84 vs 0.78 over 9 runs, docs/analytics.md)."""

    high_score: float = 0.4  # detections at or above: first association
    low_score: float = 0.1  # between low and high: second association only (export with a lower
    #                         --score-threshold to feed it)
    new_track_score: float = 0.5  # an unmatched detection starts a track from this score
    match_iou: float = 0.2  # first association (confirmed tracks, confident detections)
    low_match_iou: float = 0.5  # second association (low-score detections)
    new_match_iou: float = 0.3  # unconfirmed tracks
    lost_seconds: float = 1.0  # how long an unseen track keeps its ID, in source time


@dataclass
class TrackResult:
    """One frame's outcome.  track_ids: an ID per input detection (-1: not part of a confirmed
    track).  ids / boxes / labels / class_ids / scores: the confirmed tracks seen this frame, with
    their Kalman-filtered boxes.  removed: IDs that expired this frame."""

    track_ids: np.ndarray
    ids: np.ndarray
    boxes: np.ndarray
    labels: List[str]
    class_ids: np.ndarray
    scores: np.ndarray
    removed: List[int]
    anchors: np.ndarray  # [K,2] bottom centres of `boxes`, the point lines and zones test

    def __len__(self) -> int:
        return int(self.ids.shape[0])


def _hungarian():
    """scipy's linear_sum_assignment, imported when a tracker is made (the runtime without --track needs no scipy)."""
    try:
        from scipy.optimize import linear_sum_assignment
    except ImportError:
        raise EdgeEdetError("tracking needs scipy (pip install scipy; on a Jetson: "
                            "sudo apt install python3-scipy)") from None
    return linear_sum_assignment


def _match(assign, iou_all: np.ndarray, track_rows: np.ndarray, det_cols: np.ndarray,
           threshold: float) -> Tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hungarian matching of tracks `track_rows` to detections `det_cols` maximising total IoU; pairs
    under `threshold` are not matches.  Returns positions (in track_rows / det_cols) of the matched
    rows and columns, then of the unmatched rows and columns."""
    rows_n, cols_n = len(track_rows), len(det_cols)
    if rows_n == 0 or cols_n == 0:
        empty = np.zeros(0, np.int64)
        return empty, empty, np.arange(rows_n), np.arange(cols_n)
    iou = iou_all.take(track_rows, axis=0).take(det_cols, axis=1)  # a few times faster than [rows[:, None], cols]
    rows, cols = assign(iou, maximize=True)
    good = iou[rows, cols] >= threshold
    rows, cols = rows[good], cols[good]
    taken_rows = np.zeros(rows_n, bool)
    taken_cols = np.zeros(cols_n, bool)
    taken_rows[rows] = True
    taken_cols[cols] = True
    return rows, cols, (~taken_rows).nonzero()[0], (~taken_cols).nonzero()[0]


class ByteTracker:
    """update(boxes, scores, class_ids[, labels][, frame_index]) once per frame, in order."""

    def __init__(self, fps: Optional[float] = None, settings: Optional[TrackerSettings] = None):
        self._assign = _hungarian()
        self.settings = settings or TrackerSettings()
        self.fps = float(fps) if fps and fps > 0 else DEFAULT_FPS
        self.max_lost_frames = max(1, int(round(self.settings.lost_seconds * self.fps)))
        self.bank = KalmanBank()
        self.meta = np.zeros((0, 3), np.int64)  # per row: track id (-1 until confirmed), class id, last frame seen
        self.labels: List[str] = []
        self.trails: Dict[int, Deque[Tuple[float, float]]] = {}  # confirmed track id -> recent anchor points
        self.frame = -1
        self.next_id = 1

    @property
    def ids(self) -> np.ndarray:
        return self.meta[:, 0]

    @property
    def class_ids(self) -> np.ndarray:
        return self.meta[:, 1]

    @property
    def last_frame(self) -> np.ndarray:
        return self.meta[:, 2]

    @property
    def confirmed_total(self) -> int:
        """Tracks that got an ID so far."""
        return self.next_id - 1

    def __len__(self) -> int:
        return int(self.meta.shape[0])

    def _confirm(self, rows: np.ndarray) -> None:
        fresh = rows[self.meta[rows, 0] < 0]
        if fresh.size:
            self.meta[fresh, 0] = np.arange(self.next_id, self.next_id + fresh.size)
            self.next_id += int(fresh.size)
            for track_id in self.meta[fresh, 0].tolist():
                self.trails[track_id] = collections.deque(maxlen=TRAIL_LENGTH)

    def update(self, boxes, scores, class_ids, labels=None, frame_index: Optional[int] = None) -> TrackResult:
        s = self.settings
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        classes = np.asarray(class_ids, np.int64).reshape(-1)
        labels = list(labels) if labels is not None else [str(c) for c in classes]
        frame = self.frame + 1 if frame_index is None else int(frame_index)
        first_frame = self.frame < 0
        steps = 1 if first_frame else max(1, frame - self.frame)
        self.frame = frame
        self.bank.predict(steps)
        ids, last = self.meta[:, 0], self.meta[:, 2]
        alive = frame - last <= self.max_lost_frames  # expired tracks take no part; dropped below

        high = (scores >= s.high_score).nonzero()[0]
        low = ((scores >= s.low_score) & (scores < s.high_score)).nonzero()[0]
        confirmed = (alive & (ids >= 0)).nonzero()[0]
        tentative = (alive & (ids < 0)).nonzero()[0]
        iou = iou_matrix(self.bank.boxes(), boxes)  # once per frame; the stages take sub-matrices
        if iou.size:
            iou[self.meta[:, 1][:, None] != classes[None, :]] = 0.0  # per class

        # 1. confirmed tracks (seen or lost) <- confident detections
        r1, c1, left_rows, left_high = _match(self._assign, iou, confirmed, high, s.match_iou)
        # 2. tracks seen last frame, still unmatched <- low-score detections
        recent = confirmed[left_rows]
        recent = recent[last[recent] >= frame - steps]
        r2, c2, _, _ = _match(self._assign, iou, recent, low, s.low_match_iou)
        # 3. unconfirmed tracks <- confident detections left over; a match confirms the track
        high_left = high[left_high]
        r3, c3, _, new_cols = _match(self._assign, iou, tentative, high_left, s.new_match_iou)

        rows = np.concatenate([confirmed[r1], recent[r2], tentative[r3]]).astype(np.int64)
        dets = np.concatenate([high[c1], low[c2], high_left[c3]]).astype(np.int64)
        if rows.size:
            self.bank.update(rows, boxes[dets])
            self.meta[rows, 2] = frame
            self._confirm(rows)

        # drop expired tracks, and unconfirmed ones not seen now (they get one chance)
        keep = alive & ((self.meta[:, 0] >= 0) | (self.meta[:, 2] == frame))
        removed: List[int] = []
        if not keep.all():
            removed = [i for i in self.meta[~keep & ~alive, 0].tolist() if i >= 0]
            for track_id in removed:
                self.trails.pop(track_id, None)
            index = np.cumsum(keep) - 1
            rows = index[rows]
            self.bank.keep(keep)
            self.meta = self.meta[keep]
            self.labels = [label for label, k in zip(self.labels, keep.tolist()) if k]

        # new tracks from confident detections nobody claimed (confirmed at once on the first frame)
        starts = high_left[new_cols]
        starts = starts[scores[starts] >= s.new_track_score]
        if starts.size:
            first_row = len(self)
            self.bank.add(boxes[starts])
            meta = np.empty((starts.size, 3), np.int64)
            meta[:, 0], meta[:, 1], meta[:, 2] = -1, classes[starts], frame
            self.meta = np.concatenate([self.meta, meta])
            self.labels.extend(labels[d] for d in starts.tolist())
            if first_frame:
                new_rows = np.arange(first_row, len(self))
                self._confirm(new_rows)
                rows = np.concatenate([rows, new_rows])
                dets = np.concatenate([dets, starts])

        track_ids = np.full(len(scores), -1, np.int64)
        seen_ids = self.meta[rows, 0]
        track_ids[dets] = seen_ids
        seen_boxes = self.bank.boxes(rows)
        anchors = anchor_points(seen_boxes)
        for track_id, point in zip(seen_ids.tolist(), anchors.tolist()):
            self.trails[track_id].append(point)
        return TrackResult(track_ids, seen_ids, seen_boxes, [self.labels[r] for r in rows.tolist()],
                           self.meta[rows, 1], scores[dets], removed, anchors)
