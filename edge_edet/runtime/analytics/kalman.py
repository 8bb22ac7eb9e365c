"""Constant-velocity Kalman filter for many boxes at once (array operations per step, not per track).

State per box: centre x, centre y, width, height and their velocities (pixels per frame).  Noise
is proportional to the box size, so a near, large object may move more pixels per frame than a
far, small one; the weights are the ones SORT-family trackers settled on.  Steps may span
several frames (dropped frames in latest-frame mode): position uncertainty grows with the gap.

Every matrix of this model (transition, process and measurement noise, the initial covariance)
is block diagonal per coordinate, so the 8x8 covariance stays four independent 2x2 blocks
(position, velocity) and the filter is exact as element-wise arithmetic on [4,N] arrays.  The
bank stores each quantity as contiguous rows of one [20,N] array (quantity-major): with 50 tracks
every operation then runs on one contiguous block, where the track-major [N,20] layout made numpy
walk strided [N,4] column slices at several times the cost per operation.
"""
from __future__ import annotations

import numpy as np

POSITION_STD = 1.0 / 20  # of the box size, per frame
VELOCITY_STD = 1.0 / 160


def boxes_to_measurements(boxes: np.ndarray) -> np.ndarray:
    """x1, y1, x2, y2 -> cx, cy, w, h ([N,4] both)."""
    return _measurements(boxes).T


def _measurements(boxes: np.ndarray) -> np.ndarray:
    """x1, y1, x2, y2 [N,4] -> cx, cy, w, h as [4,N] rows (the bank's layout)."""
    b = np.asarray(boxes, np.float64).reshape(-1, 4).T
    z = np.empty((4, b.shape[1]))
    np.subtract(b[2:4], b[0:2], out=z[2:4])
    np.multiply(z[2:4], 0.5, out=z[0:2])
    z[0:2] += b[0:2]
    return z


def _boxes(pos: np.ndarray) -> np.ndarray:
    """cx, cy, w, h as [4,N] rows -> x1, y1, x2, y2 [N,4]."""
    half = np.maximum(pos[2:4], 1e-3)
    half *= 0.5
    out = np.empty((4, pos.shape[1]))
    np.subtract(pos[0:2], half, out=out[0:2])
    np.add(pos[0:2], half, out=out[2:4])
    return out.T


_WHWH = np.array([2, 3, 2, 3])


def _scales(pos: np.ndarray) -> np.ndarray:
    """[4,N] per-coordinate scale (w, h, w, h) from cx, cy, w, h rows."""
    return np.maximum(pos[_WHWH], 1.0)


# rows of the state array: position, velocity, and the 2x2 covariance blocks per coordinate
POS, VEL, P_PP, P_PV, P_VV = (slice(4 * k, 4 * k + 4) for k in range(5))
WIDTH = 20


class KalmanBank:
    """N tracks in one [20,N] array (adding, dropping and updating tracks is one operation each):
    position (cx, cy, w, h), velocity, and per coordinate the covariance entries p_pp, p_pv, p_vv.
    The properties give [N,4] views, one row per track."""

    def __init__(self):
        self.state = np.zeros((WIDTH, 0))

    def __len__(self) -> int:
        return self.state.shape[1]

    @property
    def pos(self) -> np.ndarray:
        return self.state[POS].T

    @property
    def vel(self) -> np.ndarray:
        return self.state[VEL].T

    @property
    def p_pp(self) -> np.ndarray:
        return self.state[P_PP].T

    @property
    def p_pv(self) -> np.ndarray:
        return self.state[P_PV].T

    def add(self, boxes: np.ndarray) -> None:
        z = _measurements(boxes)
        if z.shape[1] == 0:
            return
        s = _scales(z)
        columns = np.zeros((WIDTH, z.shape[1]))
        columns[POS] = z
        columns[P_PP] = (2 * POSITION_STD * s) ** 2
        columns[P_VV] = (10 * VELOCITY_STD * s) ** 2
        self.state = np.concatenate([self.state, columns], axis=1)

    def keep(self, mask: np.ndarray) -> None:
        self.state = self.state[:, mask]

    def predict(self, steps: float = 1.0) -> None:
        """Advance every track by `steps` frames: x += v*dt; P = F P F^T + Q*dt."""
        if len(self) == 0:
            return
        dt = float(steps)
        st = self.state
        s2 = _scales(st[POS])
        s2 *= s2
        st[POS] += st[VEL] * dt
        st[P_PP] += (2 * dt) * st[P_PV] + (dt * dt) * st[P_VV] + (POSITION_STD ** 2 * dt) * s2
        st[P_PV] += dt * st[P_VV]
        st[P_VV] += (VELOCITY_STD ** 2 * dt) * s2

    def update(self, rows: np.ndarray, boxes: np.ndarray) -> None:
        """Correct tracks `rows` with measured boxes (same order)."""
        if len(rows) == 0:
            return
        z = _measurements(boxes)
        sub = self.state[:, rows]
        pos, p_pp, p_pv = sub[POS], sub[P_PP], sub[P_PV]
        innovation_var = _scales(pos)
        innovation_var *= POSITION_STD
        innovation_var *= innovation_var
        innovation_var += p_pp
        gain_p, gain_v = p_pp / innovation_var, p_pv / innovation_var
        innovation = z - pos
        sub[VEL] += gain_v * innovation
        sub[P_VV] -= gain_v * p_pv
        keep_p = 1 - gain_p
        sub[P_PV] *= keep_p
        sub[P_PP] *= keep_p
        sub[POS] += gain_p * innovation
        self.state[:, rows] = sub

    def boxes(self, rows=None) -> np.ndarray:
        """x1, y1, x2, y2 [N,4] of every track, or of tracks `rows`."""
        return _boxes(self.state[POS] if rows is None else self.state[POS][:, rows])
