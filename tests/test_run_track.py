"""`edge-edet run --track --line --zone` end to end: the bundled person detector on the real people clip.

Exporting the deploy graph (conftest's person_batch4_onnx) takes ~15 s on the 2-core machine, so the
module is marked slow.
"""
import json
import os

import pytest

from conftest import shared_path
from edge_edet.commands.run import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def person_onnx(person_batch4_onnx):
    """The person detector (conftest: exported once per session, with a dynamic batch; one source runs it at 1)."""
    return person_batch4_onnx


@pytest.fixture(scope="module")
def people():
    return shared_path("data", "video", "people_walking.mp4")


def run_main(capsys, *argv):
    code = main([str(a) for a in argv], prog="edge-edet run")
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_track_and_count_on_the_people_clip(person_onnx, people, tmp_path, capsys):
    dets, summary = tmp_path / "dets.jsonl", tmp_path / "summary.json"
    code, out, err = run_main(capsys, "--engine", person_onnx, "--source", people, "--headless", "--max-frames", 60,
                              "--line", "0.5,0.3,0.5,0.9,centre", "--zone", "0,0.3,0.5,0.3,0.5,1,0,1,left",
                              "--json", dets, "--summary-json", summary)
    assert code == 0, err
    assert "tracking is on (--track)" in err  # counting turned tracking on, and said so
    records = [json.loads(line) for line in dets.read_text().splitlines()]
    assert len(records) == 60
    ids = [d["track_id"] for r in records for d in r["detections"]]
    assert ids and all("track_id" in d for r in records for d in r["detections"])
    assert max(ids) >= 1 and records[-1]["counts"]["tracks"] >= 1
    assert set(records[-1]["counts"]["lines"]) == {"centre"} and set(records[-1]["counts"]["zones"]) == {"left"}
    data = json.loads(summary.read_text())
    assert data["counts"] == records[-1]["counts"] and data["stages"]["track"]["count"] == 60
    assert "line centre: in" in out and "zone left:" in out


@pytest.mark.parametrize("flags,words", [
    (["--line", "1,2,3"], "expected 4 numbers"),
    (["--zone", "0,0,10,10"], "at least 3 points"),
    (["--track", "--line", "0,100,900,100"], "outside the 768x576 frame"),
    (["--line", "0,0.5,1,0.5,a", "--zone", "0,0,1,0,1,1,a"], "used twice"),
])
def test_bad_counting_input_is_one_sentence_and_leaves_no_file(person_onnx, people, tmp_path, capsys, flags, words):
    dets = tmp_path / "dets.jsonl"
    code, _, err = run_main(capsys, "--engine", person_onnx, "--source", people, "--headless", "--json", dets, *flags)
    assert code == 2 and words in err and "Traceback" not in err
    assert err.strip().count("\n") <= 1  # one sentence (after at most the tracking note)
    assert os.listdir(tmp_path) == []
