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


_WHWH = np.array([2, 3, 2, 3])


def _scales(z: np.ndarray) -> np.ndarray:
    """[N,4] per-coordinate scale (w, h, w, h) from cx, cy, w, h."""
    return np.maximum(z[:, _WHWH], 1.0)


# columns of the state array: position, velocity, and the 2x2 covariance blocks per coordinate
POS, VEL, P_PP, P_PV, P_VV = (slice(4 * k, 4 * k + 4) for k in range(5))
WIDTH = 20


class KalmanBank:
    """N tracks in one [N,20] array (so adding, dropping and updating rows is one operation each):
    position (cx, cy, w, h), velocity, and per coordinate the covariance entries p_pp, p_pv, p_vv."""

    def __init__(self):
        self.state = np.zeros((0, WIDTH))

    def __len__(self) -> int:
        return self.state.shape[0]

    @property
    def pos(self) -> np.ndarray:
        return self.state[:, POS]

    @property
    def vel(self) -> np.ndarray:
        return self.state[:, VEL]

    @property
    def p_pp(self) -> np.ndarray:
        return self.state[:, P_PP]

    @property
    def p_pv(self) -> np.ndarray:
        return self.state[:, P_PV]

    def add(self, boxes: np.ndarray) -> None:
        z = boxes_to_measurements(boxes)
        if z.shape[0] == 0:
            return
        s = _scales(z)
        rows = np.zeros((z.shape[0], WIDTH))
        rows[:, POS] = z
        rows[:, P_PP] = (2 * POSITION_STD * s) ** 2
        rows[:, P_VV] = (10 * VELOCITY_STD * s) ** 2
        self.state = np.concatenate([self.state, rows])

    def keep(self, mask: np.ndarray) -> None:
        self.state = self.state[mask]

    def predict(self, steps: float = 1.0) -> None:
        """Advance every track by `steps` frames: x += v*dt; P = F P F^T + Q*dt."""
        if len(self) == 0:
            return
        dt = float(steps)
        st = self.state
        s2 = _scales(st[:, POS]) ** 2
        st[:, POS] += st[:, VEL] * dt
        st[:, P_PP] += (2 * dt) * st[:, P_PV] + (dt * dt) * st[:, P_VV] + (POSITION_STD ** 2 * dt) * s2
        st[:, P_PV] += dt * st[:, P_VV]
        st[:, P_VV] += (VELOCITY_STD ** 2 * dt) * s2

    def update(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        """Correct tracks `rows` with measured boxes (same order)."""
        if len(rows) == 0:
            return
        z = boxes_to_measurements(boxes)
        sub = self.state[rows]
        pos, p_pp, p_pv = sub[:, POS], sub[:, P_PP], sub[:, P_PV]
        innovation_var = p_pp + (POSITION_STD * _scales(pos)) ** 2
        gain_p, gain_v = p_pp / innovation_var, p_pv / innovation_var
        innovation = z - pos
        sub[:, VEL] += gain_v * innovation
        sub[:, P_VV] -= gain_v * p_pv
        sub[:, P_PV] *= 1 - gain_p
        sub[:, P_PP] *= 1 - gain_p
        sub[:, POS] += gain_p * innovation
        self.state[rows] = sub

    def boxes(self, rows=None) -> np.ndarray:
        """x1, y1, x2, y2 of every track, or of tracks `rows`."""
        return states_to_boxes(self.state[:, POS] if rows is None else self.state[rows, POS])
