"""The overlay's tags: inside the frame, never over each other, legible on any background, and no
untracked box drawn when tracking (docs/analytics.md)."""
import numpy as np
import pytest

from edge_edet.runtime.analytics import AnalyticsFrame, Line, Zone
from edge_edet.runtime.analytics.draw import ZONE_COLOR, draw_analytics
from edge_edet.runtime.detections import Detections
from edge_edet.runtime.overlay import draw_detections, draw_overlay, track_color
from edge_edet.runtime.tags import TagLayout, overlay_scale, text_color_on


def dets(boxes, scores=None, track_ids=None):
    boxes = np.asarray(boxes, np.float32)
    n = len(boxes)
    scores = np.asarray(scores if scores is not None else [0.9] * n, np.float32)
    found = Detections(boxes, scores, np.zeros(n, np.int32), ["person"] * n)
    if track_ids is not None:
        found.analytics = AnalyticsFrame(np.asarray(track_ids, np.int64), {}, set(),
                                         {"tracks": 0, "lines": {}, "zones": {}})
    return found


def overlaps(a, b):
    return min(a[2], b[2]) > max(a[0], b[0]) and min(a[3], b[3]) > max(a[1], b[1])


def tag_rects(frame, found, fps=None):
    layout = TagLayout(frame, overlay_scale(frame)[0])
    draw_detections(frame, found, fps, layout)
    return layout.rects


def test_labels_of_people_side_by_side_do_not_cover_each_other():
    frame = np.zeros((576, 768, 3), np.uint8)
    # five people shoulder to shoulder: each tag is wider than the gap between their boxes
    boxes = [[300 + 12 * k, 200 + 3 * k, 330 + 12 * k, 300] for k in range(5)]
    rects = tag_rects(frame, dets(boxes, track_ids=[11, 12, 13, 14, 16]))
    assert len(rects) == 5
    for i in range(5):
        for j in range(i + 1, 5):
            assert not overlaps(rects[i], rects[j]), (rects[i], rects[j])


@pytest.mark.parametrize("box", [[740, 300, 768, 380], [0, 0, 20, 40], [700, 540, 768, 576]])
def test_a_label_at_the_frame_edge_stays_whole_inside_it(box):
    frame = np.zeros((576, 768, 3), np.uint8)
    (x1, y1, x2, y2), = tag_rects(frame, dets([box], track_ids=[16]))
    assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 576
    assert x2 - x1 > 80  # the whole '#16 person 0.90', not a clipped stub


def test_tags_keep_off_the_fps_counter():
    frame = np.zeros((576, 768, 3), np.uint8)
    rects = tag_rects(frame, dets([[2, 2, 60, 120]]), fps=12.5)
    fps, tag = rects
    assert not overlaps(fps, tag)


def test_text_contrasts_with_its_tag():
    assert text_color_on(ZONE_COLOR) == (0, 0, 0)  # azure: black text
    assert text_color_on((120, 40, 0)) == (255, 255, 255)  # dark blue: white text
    assert text_color_on((255, 255, 255)) == (0, 0, 0) and text_color_on((0, 0, 0)) == (255, 255, 255)


def test_zone_name_reads_on_green_grass():
    grass = np.zeros((576, 768, 3), np.uint8)
    grass[:] = (40, 140, 60)  # BGR green
    view = AnalyticsFrame(np.zeros(0, np.int64), {}, set(),
                          {"tracks": 0, "lines": {}, "zones": {"lawn": {"occupancy": 1, "visits": 1}}},
                          zones=[Zone(((40, 260), (270, 260), (270, 430), (40, 430)), "lawn")], occupied={"lawn": 1})
    layout = TagLayout(grass, overlay_scale(grass)[0])
    draw_analytics(grass, view, layout)
    x1, y1, x2, y2 = layout.rects[-1]  # the zone's tag, after the panel
    assert 40 <= x1 and 260 <= y1 and x2 <= 270 and y2 <= 430  # inside the zone's corner
    inside = grass[y1 + 2:y2 - 2, x1 + 2:x2 - 2].reshape(-1, 3).astype(int)
    fill = np.all(inside == ZONE_COLOR, axis=1)
    text = np.all(inside == 0, axis=1)
    assert fill.mean() > 0.5 and text.sum() > 20  # black text on the zone's own colour, no grass behind it


def test_untracked_boxes_are_not_drawn_when_tracking():
    frame = np.zeros((300, 400, 3), np.uint8)
    # a tracked person and, inside it, a box no track claimed (track -1)
    found = dets([[100, 50, 200, 250], [120, 100, 180, 200]], scores=[0.9, 0.45], track_ids=[3, -1])
    draw_overlay(frame, found)
    assert tuple(int(v) for v in frame[150, 100]) == track_color(3)  # the tracked box's left edge
    assert frame[150, 120].sum() == 0 and frame[100, 150].sum() == 0  # the untracked one's edges: not drawn
    plain = np.zeros((300, 400, 3), np.uint8)
    draw_overlay(plain, dets([[100, 50, 200, 250], [120, 100, 180, 200]], scores=[0.9, 0.45]))
    assert plain[150, 120].sum() > 0  # without tracking every box is drawn


def test_line_name_and_panel_do_not_collide():
    frame = np.zeros((240, 320, 3), np.uint8)
    counts = {"tracks": 2, "lines": {"centre": {"in": 1, "out": 0}}, "zones": {}}
    view = AnalyticsFrame(np.zeros(0, np.int64), {}, set(), counts, lines=[Line((300, 5), (300, 200), "centre")])
    layout = TagLayout(frame, overlay_scale(frame)[0])
    draw_analytics(frame, view, layout)
    panel, line_tag = layout.rects
    assert not overlaps(panel, line_tag)
    assert 0 <= line_tag[0] and line_tag[2] <= 320
