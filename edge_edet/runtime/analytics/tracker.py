"""ByteTrack-style multi-object tracker: stable IDs per class from per-frame detections.

Each frame: predict every track with its Kalman state; match confident detections to confirmed
tracks on IoU (Hungarian); then match the leftover tracks that were seen last frame to the
low-score detections (an occluded person's score dips before it vanishes: ByteTrack's point);
then new tracks from last frame's unconfirmed ones.  A track needs a second sighting to get an
ID (a one-frame false positive never shows up), and a lost track is kept for `lost_seconds` of
the source's frames so an object that comes back after an occlusion keeps its ID.  Matching is
per class: a person never inherits a car's ID.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass
from typing import Deque, List, Optional, Tuple

import numpy as np
from scipy.optimize import linear_sum_assignment

from .geometry import iou_matrix
from .kalman import KalmanBank

DEFAULT_FPS = 30.0
TRAIL_LENGTH = 30  # anchor points kept per track for the overlay's trail


@dataclass
class TrackerSettings:
    """The association thresholds (ByteTrack's published defaults, on IoU)."""

    high_score: float = 0.5  # detections at or above: first association, may start tracks
    low_score: float = 0.1  # between low and high: second association only
    new_track_score: float = 0.6  # an unmatched detection starts a track from this score
    match_iou: float = 0.2  # first association (confirmed tracks, confident detections)
    low_match_iou: float = 0.5  # second association (low-score detections)
    new_match_iou: float = 0.3  # unconfirmed tracks
    lost_seconds: float = 1.0  # how long an unseen track keeps its ID, in source time


class Track:
    """One object's identity; the Kalman state lives in the tracker's bank (same row order)."""

    __slots__ = ("track_id", "class_id", "label", "score", "confirmed", "last_frame", "first_frame", "hits",
                 "trail", "box")

    def __init__(self, class_id: int, label: str, score: float, frame: int, box: np.ndarray):
        self.track_id = -1  # assigned when confirmed
        self.class_id, self.label, self.score = int(class_id), label, float(score)
        self.confirmed = False
        self.first_frame = self.last_frame = frame
        self.hits = 1
        self.trail: Deque[Tuple[float, float]] = collections.deque(maxlen=TRAIL_LENGTH)
        self.box = np.asarray(box, np.float64)  # filtered box at the last sighting


@dataclass
class TrackResult:
    """One frame's outcome: an ID per input detection (-1: not part of a confirmed track) and the
    confirmed tracks seen this frame, with their filtered boxes; `removed` lists IDs that expired."""

    track_ids: np.ndarray  # [N] int, aligned with the detections passed in
    tracks: List[Track]
    removed: List[int]


def _match(iou: np.ndarray, threshold: float) -> Tuple[List[Tuple[int, int]], np.ndarray, np.ndarray]:
    """Hungarian matching maximising total IoU; pairs under `threshold` are not matches."""
    rows_n, cols_n = iou.shape
    if rows_n == 0 or cols_n == 0:
        return [], np.arange(rows_n), np.arange(cols_n)
    rows, cols = linear_sum_assignment(iou, maximize=True)
    good = iou[rows, cols] >= threshold
    pairs = list(zip(rows[good].tolist(), cols[good].tolist()))
    matched_rows = np.zeros(rows_n, bool)
    matched_cols = np.zeros(cols_n, bool)
    matched_rows[rows[good]] = True
    matched_cols[cols[good]] = True
    return pairs, np.flatnonzero(~matched_rows), np.flatnonzero(~matched_cols)


class ByteTracker:
    """update(boxes, scores, class_ids[, labels][, frame_index]) once per frame, in order."""

    def __init__(self, fps: Optional[float] = None, settings: Optional[TrackerSettings] = None):
        self.settings = settings or TrackerSettings()
        self.fps = float(fps) if fps and fps > 0 else DEFAULT_FPS
        self.max_lost_frames = max(1, int(round(self.settings.lost_seconds * self.fps)))
        self.tracks: List[Track] = []
        self.bank = KalmanBank()
        self.frame = -1
        self.next_id = 1
        self.confirmed_total = 0

    def _gated_iou(self, boxes: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """IoU of every track's predicted box with every detection [T, N]; zero across classes."""
        iou = iou_matrix(self.bank.boxes(), boxes)
        if iou.size:
            track_classes = np.fromiter((t.class_id for t in self.tracks), np.int64, len(self.tracks))
            iou[track_classes[:, None] != classes[None, :]] = 0.0
        return iou

    def update(self, boxes, scores, class_ids, labels=None, frame_index: Optional[int] = None) -> TrackResult:
        s = self.settings
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        scores = np.asarray(scores, np.float64).reshape(-1)
        classes = np.asarray(class_ids, np.int64).reshape(-1)
        labels = list(labels) if labels is not None else [str(c) for c in classes]
        frame = self.frame + 1 if frame_index is None else int(frame_index)
        steps = max(1, frame - self.frame) if self.frame >= 0 else 1
        first_frame = self.frame < 0
        self.frame = frame
        self.bank.predict(steps)

        track_ids = np.full(len(scores), -1, np.int64)
        matched_rows: List[int] = []
        matched_dets: List[int] = []

        high = np.flatnonzero(scores >= s.high_score)
        low = np.flatnonzero((scores >= s.low_score) & (scores < s.high_score))
        confirmed = np.array([i for i, t in enumerate(self.tracks) if t.confirmed], np.int64)
        tentative = np.array([i for i, t in enumerate(self.tracks) if not t.confirmed], np.int64)
        iou = self._gated_iou(boxes, classes)  # once per frame; the stages take sub-matrices

        # 1. confirmed tracks (seen or lost) <- confident detections
        pairs, left_rows, left_high = _match(iou[np.ix_(confirmed, high)], s.match_iou)
        for r, c in pairs:
            matched_rows.append(int(confirmed[r]))
            matched_dets.append(int(high[c]))
        # 2. tracks seen last frame, still unmatched <- low-score detections
        recent = np.array([confirmed[r] for r in left_rows if self.tracks[confirmed[r]].last_frame >= frame - steps],
                          np.int64)
        pairs, _, _ = _match(iou[np.ix_(recent, low)], s.low_match_iou)
        for r, c in pairs:
            matched_rows.append(int(recent[r]))
            matched_dets.append(int(low[c]))
        # 3. unconfirmed tracks <- confident detections left over; a match confirms the track
        high_left = high[left_high]
        pairs, _, new_cols = _match(iou[np.ix_(tentative, high_left)], s.new_match_iou)
        for r, c in pairs:
            matched_rows.append(int(tentative[r]))
            matched_dets.append(int(high_left[c]))

        seen: List[Track] = []
        if matched_rows:
            self.bank.update(np.array(matched_rows), boxes[matched_dets])
            filtered = self.bank.boxes()
            for row, det in zip(matched_rows, matched_dets):
                track = self.tracks[row]
                track.last_frame = frame
                track.hits += 1
                track.score = float(scores[det])
                track.box = filtered[row]
                if not track.confirmed:
                    track.confirmed = True
                    track.track_id = self.next_id
                    self.next_id += 1
                    self.confirmed_total += 1
                track.trail.append(((track.box[0] + track.box[2]) / 2, float(track.box[3])))
                track_ids[det] = track.track_id
                seen.append(track)

        # forget unmatched unconfirmed tracks and tracks lost for too long
        removed: List[int] = []
        keep = np.ones(len(self.tracks), bool)
        for i, track in enumerate(self.tracks):
            if track.last_frame == frame:
                continue
            if not track.confirmed or frame - track.last_frame > self.max_lost_frames:
                keep[i] = False
                if track.confirmed:
                    removed.append(track.track_id)
        if not keep.all():
            self.bank.keep(keep)
            self.tracks = [t for t, k in zip(self.tracks, keep) if k]

        # new tracks from confident detections nobody claimed (confirmed at once on the first frame)
        starts = [int(d) for d in high_left[new_cols] if scores[d] >= s.new_track_score]
        if starts:
            self.bank.add(boxes[starts])
            for d in starts:
                track = Track(classes[d], labels[d], scores[d], frame, boxes[d])
                self.tracks.append(track)
                if first_frame:
                    track.confirmed, track.track_id = True, self.next_id
                    self.next_id += 1
                    self.confirmed_total += 1
                    track.trail.append(((boxes[d][0] + boxes[d][2]) / 2, float(boxes[d][3])))
                    track_ids[d] = track.track_id
                    seen.append(track)
        return TrackResult(track_ids, seen, removed)

    @property
    def active(self) -> List[Track]:
        """Confirmed tracks still alive (seen now or lost within the buffer)."""
        return [t for t in self.tracks if t.confirmed]
