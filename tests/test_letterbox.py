"""The letterbox, pixel by pixel: the content where it belongs and the pad colour on every other pixel.

The output buffer is poisoned first (and, as in the pipeline's pool, reused from a frame of
another shape), so a pad that starts a row or a column late, or misses a corner, fails every time
rather than by chance on leftover bytes of an np.empty buffer.
"""
from __future__ import annotations

import numpy as np
import pytest

from edge_edet.contract.letterbox import letterbox

PAD = (11, 22, 33)  # BGR, never a value of the frames below
POISON = 0xAB
FRAME = (200, 150, 100)  # a uniform frame resizes to exactly its own colour

# (frame h, w), (target h, w), expected content (h, w), computed by hand from min(th/h, tw/w)
CASES = [
    ((101, 203), (64, 96), (48, 96)),  # wide, odd sides: scale 96/203, pad at the bottom only
    ((203, 101), (96, 64), (96, 48)),  # tall, odd sides: scale 96/203, pad on the right only
    ((77, 77), (65, 97), (65, 65)),  # square into a wide odd target: right pad
    ((77, 77), (97, 65), (65, 65)),  # square into a tall odd target: bottom pad
    ((30, 50), (65, 97), (58, 97)),  # upscaled (scale 97/50 = 1.94): 30 * 1.94 = 58.2 rows
    ((64, 96), (64, 96), (64, 96)),  # exact fit: no pad at all
    ((1, 1), (33, 35), (33, 33)),  # one pixel blown up: right pad
    ((1, 4000), (32, 32), (1, 32)),  # a line of pixels: one content row, 31 pad rows
]


def _frame(hw):
    return np.full(hw + (3,), FRAME, np.uint8)


def _check(out, content_hw, target_hw):
    height, width = target_hw
    ch, cw = content_hw
    assert out.shape == (height, width, 3)
    content = out[:ch, :cw]
    assert (content == FRAME).all(), "content pixels are not the frame's colour"
    pad = np.ones((height, width), bool)
    pad[:ch, :cw] = False
    assert pad.sum() == height * width - ch * cw
    padded = out[pad]
    assert padded.shape[0] == pad.sum()
    assert (padded == PAD).all(), f"{int((padded != PAD).any(axis=1).sum())} pad pixels are not the pad colour"


@pytest.mark.parametrize("frame_hw, target_hw, content_hw", CASES)
def test_every_pad_pixel_holds_the_pad_colour_in_a_poisoned_buffer(frame_hw, target_hw, content_hw):
    out = np.full(target_hw + (3,), POISON, np.uint8)
    result, scale = letterbox(_frame(frame_hw), target_hw, PAD, out=out)
    assert result is out  # written in place (the pipeline's pooled input buffers)
    assert scale == pytest.approx(min(target_hw[0] / frame_hw[0], target_hw[1] / frame_hw[1]))
    _check(out, content_hw, target_hw)


@pytest.mark.parametrize("frame_hw, target_hw, content_hw", CASES)
def test_a_reused_buffer_keeps_nothing_of_the_previous_frame(frame_hw, target_hw, content_hw):
    """The pool hands the same buffer to frames of any shape: the previous one must not show through."""
    out = np.empty(target_hw + (3,), np.uint8)
    letterbox(np.full(target_hw + (3,), 7, np.uint8), target_hw, PAD, out=out)  # fills every pixel with 7
    letterbox(_frame(frame_hw), target_hw, PAD, out=out)
    _check(out, content_hw, target_hw)


@pytest.mark.parametrize("frame_hw, target_hw, content_hw", CASES[:2])
def test_a_fresh_buffer_is_padded_exactly_too(frame_hw, target_hw, content_hw):
    out, _ = letterbox(_frame(frame_hw), target_hw, PAD)
    _check(out, content_hw, target_hw)
