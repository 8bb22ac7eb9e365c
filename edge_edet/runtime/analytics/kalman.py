"""Constant-velocity Kalman filter for many boxes at once (array operations per step, not per track).

State per box: centre x, centre y, width, height and their velocities (pixels per frame).  Noise
is proportional to the box size, so a near, large object may move more pixels per frame than a
far, small one; the weights are the ones SORT-family trackers settled on.  Steps may span
several frames (dropped frames in latest-frame mode): position uncertainty grows with the gap.

Every matrix of this model (transition, process and measurement noise, the initial covariance)
is block diagonal per coordinate, so the 8x8 covariance stays four independent 2x2 blocks
(position, velocity) and the filter is exact as element-wise arithmetic on [N,4] arrays.
"""
from __future__ import annotations

import numpy as np

POSITION_STD = 1.0 / 20  # of the box size, per frame
VELOCITY_STD = 1.0 / 160


def boxes_to_measurements(boxes: np.ndarray) -> np.ndarray:
    """x1, y1, x2, y2 -> cx, cy, w, h."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    z = np.empty_like(boxes)
    z[:, 2:] = boxes[:, 2:] - boxes[:, :2]
    z[:, :2] = boxes[:, :2] + z[:, 2:] / 2
    return z


def states_to_boxes(z: np.ndarray) -> np.ndarray:
    """cx, cy, w, h -> x1, y1, x2, y2."""
    half = np.maximum(z[:, 2:4], 1e-3) / 2
    return np.concatenate([z[:, :2] - half, z[:, :2] + half], axis=1)


def _scales(z: np.ndarray) -> np.ndarray:
    """[N,4] per-coordinate scale (w, h, w, h) from cx, cy, w, h."""
    return np.maximum(z[:, [2, 3, 2, 3]], 1.0)


class KalmanBank:
    """N tracks: position [N,4] (cx, cy, w, h), velocity [N,4], and per coordinate the covariance
    entries p_pp, p_pv, p_vv [N,4]; rows are added, updated and dropped together."""

    def __init__(self):
        self.pos = np.zeros((0, 4))
        self.vel = np.zeros((0, 4))
        self.p_pp = np.zeros((0, 4))
        self.p_pv = np.zeros((0, 4))
        self.p_vv = np.zeros((0, 4))

    def __len__(self) -> int:
        return self.pos.shape[0]

    def add(self, boxes: np.ndarray) -> None:
        z = boxes_to_measurements(boxes)
        if z.shape[0] == 0:
            return
        s = _scales(z)
        self.pos = np.concatenate([self.pos, z])
        self.vel = np.concatenate([self.vel, np.zeros_like(z)])
        self.p_pp = np.concatenate([self.p_pp, (2 * POSITION_STD * s) ** 2])
        self.p_pv = np.concatenate([self.p_pv, np.zeros_like(z)])
        self.p_vv = np.concatenate([self.p_vv, (10 * VELOCITY_STD * s) ** 2])

    def keep(self, mask: np.ndarray) -> None:
        self.pos, self.vel = self.pos[mask], self.vel[mask]
        self.p_pp, self.p_pv, self.p_vv = self.p_pp[mask], self.p_pv[mask], self.p_vv[mask]

    def predict(self, steps: float = 1.0) -> None:
        """Advance every track by `steps` frames: x += v*dt; P = F P F^T + Q*dt."""
        if len(self) == 0:
            return
        dt = float(steps)
        s2 = _scales(self.pos) ** 2
        self.pos = self.pos + self.vel * dt
        self.p_pp = self.p_pp + (2 * dt) * self.p_pv + (dt * dt) * self.p_vv + (POSITION_STD ** 2 * dt) * s2
        self.p_pv = self.p_pv + dt * self.p_vv
        self.p_vv = self.p_vv + (VELOCITY_STD ** 2 * dt) * s2

    def update(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        """Correct tracks `rows` with measured boxes (same order)."""
        rows = np.asarray(rows, np.int64)
        if rows.size == 0:
            return
        z = boxes_to_measurements(boxes)
        pos, p_pp, p_pv, p_vv = self.pos[rows], self.p_pp[rows], self.p_pv[rows], self.p_vv[rows]
        innovation_var = p_pp + (POSITION_STD * _scales(pos)) ** 2
        gain_p, gain_v = p_pp / innovation_var, p_pv / innovation_var
        innovation = z - pos
        self.pos[rows] = pos + gain_p * innovation
        self.vel[rows] = self.vel[rows] + gain_v * innovation
        self.p_pp[rows] = (1 - gain_p) * p_pp
        self.p_pv[rows] = (1 - gain_p) * p_pv
        self.p_vv[rows] = p_vv - gain_v * p_pv

    def boxes(self) -> np.ndarray:
        return states_to_boxes(self.pos)
