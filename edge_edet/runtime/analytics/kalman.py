"""Constant-velocity Kalman filter for many boxes at once (one matrix product per step, not per track).

State per box: centre x, centre y, width, height and their velocities (pixels per frame).  Noise
is proportional to the box size, so a near, large object may move more pixels per frame than a
far, small one; the weights are the ones SORT-family trackers settled on.  Steps may span
several frames (dropped frames in latest-frame mode): position uncertainty grows with the gap.
"""
from __future__ import annotations

import numpy as np

POSITION_STD = 1.0 / 20  # of the box size, per frame
VELOCITY_STD = 1.0 / 160


def boxes_to_measurements(boxes: np.ndarray) -> np.ndarray:
    """x1, y1, x2, y2 -> cx, cy, w, h."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    wh = boxes[:, 2:] - boxes[:, :2]
    return np.concatenate([boxes[:, :2] + wh / 2, wh], axis=1)


def states_to_boxes(means: np.ndarray) -> np.ndarray:
    """cx, cy, w, h (first four state entries) -> x1, y1, x2, y2."""
    centre, wh = means[:, :2], np.maximum(means[:, 2:4], 1e-3)
    return np.concatenate([centre - wh / 2, centre + wh / 2], axis=1)


def _scales(sizes: np.ndarray) -> np.ndarray:
    """[N,4] per-coordinate scale (w, h, w, h) from the boxes' sizes."""
    w, h = np.maximum(sizes[:, 0], 1.0), np.maximum(sizes[:, 1], 1.0)
    return np.stack([w, h, w, h], axis=1)


_DIAG = np.arange(8)
_TRANSITIONS: dict = {}


def _transition(steps: float) -> np.ndarray:
    """F for a step of `steps` frames (cached: almost always 1)."""
    f = _TRANSITIONS.get(steps)
    if f is None:
        f = np.eye(8)
        f[_DIAG[:4], _DIAG[:4] + 4] = steps
        _TRANSITIONS[steps] = f
    return f


class KalmanBank:
    """Means [N,8] and covariances [N,8,8] of N tracks; rows are added, updated and kept together."""

    def __init__(self):
        self.means = np.zeros((0, 8))
        self.covs = np.zeros((0, 8, 8))

    def __len__(self) -> int:
        return self.means.shape[0]

    def add(self, boxes: np.ndarray) -> None:
        z = boxes_to_measurements(boxes)
        if z.shape[0] == 0:
            return
        s = _scales(z[:, 2:4])
        means = np.concatenate([z, np.zeros_like(z)], axis=1)
        std = np.concatenate([2 * POSITION_STD * s, 10 * VELOCITY_STD * s], axis=1)
        covs = np.zeros((z.shape[0], 8, 8))
        covs[:, _DIAG, _DIAG] = std ** 2
        self.means = np.concatenate([self.means, means])
        self.covs = np.concatenate([self.covs, covs])

    def keep(self, mask: np.ndarray) -> None:
        self.means, self.covs = self.means[mask], self.covs[mask]

    def predict(self, steps: float = 1.0) -> None:
        """Advance every track by `steps` frames."""
        if len(self) == 0:
            return
        f = _transition(steps)
        s = _scales(self.means[:, 2:4])
        q = np.concatenate([(POSITION_STD * s) ** 2, (VELOCITY_STD * s) ** 2], axis=1) * steps
        self.means = self.means @ f.T
        self.covs = f @ self.covs @ f.T
        self.covs[:, _DIAG, _DIAG] += q

    def update(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        """Correct tracks `rows` with measured boxes (same order)."""
        rows = np.asarray(rows, np.int64)
        if rows.size == 0:
            return
        z = boxes_to_measurements(boxes)
        mean, cov = self.means[rows], self.covs[rows]
        r = (POSITION_STD * _scales(mean[:, 2:4])) ** 2
        s = cov[:, :4, :4].copy()
        s[:, _DIAG[:4], _DIAG[:4]] += r
        ph = cov[:, :, :4]  # P H^T
        gain = np.linalg.solve(s, np.transpose(ph, (0, 2, 1))).transpose(0, 2, 1)  # [M,8,4]
        innovation = z - mean[:, :4]
        self.means[rows] = mean + np.einsum("mij,mj->mi", gain, innovation)
        self.covs[rows] = cov - gain @ cov[:, :4, :]

    def boxes(self) -> np.ndarray:
        return states_to_boxes(self.means)
