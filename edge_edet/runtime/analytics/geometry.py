"""Boxes, lines and polygons in frame pixels: IoU, anchor points, sides of a line, point in polygon.

Also the user's `--line` / `--zone` text: parsed once (syntax errors before anything heavy),
resolved to pixels once the frame size is known (fractions of the frame or pixels).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence, Tuple

import numpy as np

from ...contract.errors import EdgeEdetError

Point = Tuple[float, float]


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in `a` [N,4] with every box in `b` [M,4] (x1, y1, x2, y2) -> [N, M].
    Per coordinate on [N,1] x [M] operands, in place: three times faster than one [N,M,2] broadcast."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    if a.shape[0] == 0 or b.shape[0] == 0:
        return np.zeros((a.shape[0], b.shape[0]))
    ax1, ay1, ax2, ay2 = a[:, 0:1], a[:, 1:2], a[:, 2:3], a[:, 3:4]
    bx1, by1, bx2, by2 = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    inter = np.minimum(ax2, bx2)
    inter -= np.maximum(ax1, bx1)
    np.maximum(inter, 0, out=inter)
    height = np.minimum(ay2, by2)
    height -= np.maximum(ay1, by1)
    np.maximum(height, 0, out=height)
    inter *= height
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1)
    union -= inter
    np.maximum(union, 1e-12, out=union)
    return np.divide(inter, union, out=inter)


_X1_Y2 = np.array([0, 3])


def anchor_points(boxes: np.ndarray) -> np.ndarray:
    """Bottom centre of each box: where a person or a car touches the ground, so a line drawn on
    the floor or the road counts what crosses it, whatever the object's height."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    points = boxes[:, _X1_Y2]  # a copy
    points[:, 0] += boxes[:, 2]
    points[:, 0] *= 0.5
    return points


def polygon_edges(polygon) -> tuple:
    """(ya, yb, slope, offset) rows [1,K] of a polygon's edges from (xa, ya) to (xb, yb), for
    points_in_polygon: a horizontal ray at height y crosses an edge it straddles at
    x = y * slope + offset."""
    poly = np.asarray(polygon, np.float64).reshape(-1, 2)
    xa, ya = poly[:, 0], poly[:, 1]
    xb, yb = np.roll(xa, -1), np.roll(ya, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = np.where(yb != ya, (xb - xa) / np.where(yb != ya, yb - ya, 1.0), 0.0)
    offset = xa - ya * slope
    return tuple(v[None, :] for v in (ya, yb, slope, offset))


def points_in_polygon(points: np.ndarray, polygon, edges: tuple = None) -> np.ndarray:
    """Even-odd rule for many points at once: [N,2] points, [K,2] polygon -> [N] bool."""
    points = np.asarray(points, np.float64).reshape(-1, 2)
    if points.shape[0] == 0:
        return np.zeros((0,), bool)
    ya, yb, slope, offset = edges if edges is not None else polygon_edges(polygon)
    x, y = points[:, 0:1], points[:, 1:2]
    crossings = (ya > y) != (yb > y)  # the edge straddles the ray
    crossings &= x < y * slope + offset  # ... left of the point
    return np.logical_xor.reduce(crossings, axis=1)  # an odd number of crossings: inside


@dataclass(frozen=True)
class Line:
    """A counting line from p1 to p2 in frame pixels.  'in' is a crossing to the right-hand side
    when walking from p1 to p2 (for a line drawn left to right across the frame: downwards)."""

    p1: Point
    p2: Point
    name: str = "line"

    def signed_distance(self, points: np.ndarray) -> np.ndarray:
        """Pixels from the line, positive on the 'in' side (image y points down)."""
        ux, uy, offset = self._normal
        points = np.asarray(points, np.float64).reshape(-1, 2)
        distance = points[:, 1] * ux
        distance -= points[:, 0] * uy
        distance -= offset
        return distance

    @property
    def _normal(self) -> Tuple[float, float, float]:
        """(dx, dy) / length and the offset of p1, so the distance is y*ux - x*uy - offset (cached)."""
        cached = self.__dict__.get("_normal_cache")
        if cached is None:
            (x1, y1), (x2, y2) = self.p1, self.p2
            dx, dy = x2 - x1, y2 - y1
            length = max(float(np.hypot(dx, dy)), 1e-9)
            ux, uy = dx / length, dy / length
            cached = (ux, uy, y1 * ux - x1 * uy)
            object.__setattr__(self, "_normal_cache", cached)
        return cached

    def along(self, points: np.ndarray) -> np.ndarray:
        """Position of each point's projection on the segment: 0 at p1, 1 at p2."""
        (x1, y1), (x2, y2) = self.p1, self.p2
        dx, dy = x2 - x1, y2 - y1
        points = np.asarray(points, np.float64).reshape(-1, 2)
        return ((points[:, 0] - x1) * dx + (points[:, 1] - y1) * dy) / max(dx * dx + dy * dy, 1e-9)


@dataclass(frozen=True)
class Zone:
    """A polygon (three or more corners) in frame pixels."""

    points: Tuple[Point, ...]
    name: str = "zone"

    def contains(self, points: np.ndarray) -> np.ndarray:
        return points_in_polygon(points, None, self.edges)

    @property
    def edges(self) -> tuple:
        cached = self.__dict__.get("_edges")
        if cached is None:
            cached = polygon_edges(self.points)
            object.__setattr__(self, "_edges", cached)
        return cached

    @property
    def polygon(self) -> np.ndarray:
        return np.asarray(self.points, np.float64)


# -- the user's text ---------------------------------------------------------------------------
@dataclass(frozen=True)
class ShapeSpec:
    """A --line or --zone as written: numbers (pixels, or fractions of the frame when all are <= 1)."""

    flag: str
    text: str
    values: Tuple[float, ...]
    name: str

    @property
    def fractions(self) -> bool:
        return all(0.0 <= v <= 1.0 for v in self.values)

    def to_pixels(self, width: int, height: int) -> Tuple[Point, ...]:
        """Corner points in pixels; one sentence if any lies outside a width x height frame."""
        xs, ys = self.values[0::2], self.values[1::2]
        if self.fractions:
            xs, ys = [x * width for x in xs], [y * height for y in ys]
        points = tuple((float(x), float(y)) for x, y in zip(xs, ys))
        outside = [p for p in points if not (0 <= p[0] <= width and 0 <= p[1] <= height)]
        if outside:
            x, y = outside[0]
            raise EdgeEdetError(f"{self.flag} \"{self.text}\": point ({x:g}, {y:g}) is outside the "
                                f"{width}x{height} frame (give pixels inside it, or fractions 0-1)")
        return points


def _numbers(flag: str, text: str, example: str) -> Tuple[Tuple[float, ...], Optional[str]]:
    parts = [p.strip() for p in str(text).split(",")]
    name = None
    if parts and parts[-1] and not _is_number(parts[-1]):
        name = parts.pop()
    if not parts or not all(_is_number(p) for p in parts):
        raise EdgeEdetError(f"{flag} \"{text}\": expected comma-separated numbers, e.g. {example}")
    values = tuple(float(p) for p in parts)
    if any(v < 0 for v in values):
        raise EdgeEdetError(f"{flag} \"{text}\": coordinates cannot be negative (the frame starts at 0,0)")
    return values, name


def _is_number(text: str) -> bool:
    try:
        return np.isfinite(float(text))
    except ValueError:
        return False


def parse_line(text: str, index: int = 0) -> ShapeSpec:
    """'x1,y1,x2,y2[,name]' (pixels, or fractions 0-1 of the frame)."""
    example = "--line \"0,0.5,1,0.5,door\" (fractions) or --line \"0,240,640,240\" (pixels)"
    values, name = _numbers("--line", text, example)
    if len(values) != 4:
        raise EdgeEdetError(f"--line \"{text}\": expected 4 numbers x1,y1,x2,y2 (and an optional name), "
                            f"got {len(values)}; e.g. {example}")
    if values[:2] == values[2:]:
        raise EdgeEdetError(f"--line \"{text}\": the two end points are the same point")
    return ShapeSpec("--line", str(text), values, name or f"line{index + 1}")


def parse_zone(text: str, index: int = 0) -> ShapeSpec:
    """'x1,y1,x2,y2,x3,y3,...[,name]': three or more corners (pixels, or fractions 0-1)."""
    example = "--zone \"0.1,0.1,0.5,0.1,0.5,0.6,0.1,0.6,desk\""
    values, name = _numbers("--zone", text, example)
    if len(values) % 2:
        raise EdgeEdetError(f"--zone \"{text}\": expected x,y pairs, got an odd count of numbers ({len(values)})")
    if len(values) < 6:
        raise EdgeEdetError(f"--zone \"{text}\": a zone needs at least 3 points (6 numbers), got "
                            f"{len(values) // 2}; e.g. {example}")
    corners = np.asarray(values, np.float64).reshape(-1, 2)
    spread = np.linalg.svd(corners - corners.mean(axis=0), compute_uv=False)  # both zero: one point; one: a line
    if spread[1] <= 1e-9 * max(1.0, spread[0]):
        raise EdgeEdetError(f"--zone \"{text}\": the zone has no area (its points lie on one line), so nothing "
                            f"could ever be inside it; give the corners of a region")
    return ShapeSpec("--zone", str(text), values, name or f"zone{index + 1}")


def resolve(specs: Sequence[ShapeSpec], width: int, height: int) -> list:
    """Lines and Zones in pixels for a width x height frame; names must be unique."""
    shapes, seen = [], set()
    for spec in specs:
        if spec.name in seen:
            raise EdgeEdetError(f"{spec.flag} \"{spec.text}\": the name '{spec.name}' is used twice")
        seen.add(spec.name)
        points = spec.to_pixels(width, height)
        if spec.flag == "--line":
            shapes.append(Line(points[0], points[1], spec.name))
        else:
            shapes.append(Zone(points, spec.name))
    return shapes
