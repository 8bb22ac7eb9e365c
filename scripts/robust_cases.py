"""Try the bad inputs and failures of issue 14 as a careful user would, and count the outcomes.

    python scripts/robust_cases.py --model person.onnx [--shared ../shared]

Each case runs `python -m edge_edet ...` in a child process (disk full = a file-size limit through
RLIMIT_FSIZE, SIGXFSZ ignored) in a scratch folder holding guard files: copies of the inputs and
old outputs.  A case is a *clean refusal* when it exits non-zero with exactly one `error:` line and
no traceback; *data lost* when a guard file changed or a hidden partial was left behind.  Cases that
should succeed (a JSON-lines stream to stdout) count as clean when they exit 0.  Prints one row per
case and the totals table.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OLD_JSONL = "".join(json.dumps({"frame": i, "old": True}) + "\n" for i in range(50))


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def run_case(args, cwd, limit=None, timeout=600):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-m", "edge_edet"] + args, cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=preexec if limit else None)
    return proc.returncode, proc.stdout, proc.stderr


def prepare(work, model, shared):
    """The scratch folder: inputs, old outputs (guards) and bad inputs."""
    import cv2
    import numpy as np
    import onnx

    from edge_edet.contract.metadata import deploy_info_from_onnx_model, write_onnx_metadata

    video = os.path.join(shared, "data", "video", "cars_short.mp4")
    shutil.copy(video, os.path.join(work, "clip.mp4"))
    shutil.copy(model, os.path.join(work, "model.onnx"))
    with open(os.path.join(work, "clip.mp4"), "rb") as handle:
        head = handle.read(20000)
    with open(os.path.join(work, "trunc.mp4"), "wb") as handle:
        handle.write(head)
    for name, data in (("garbage.mp4", b"garbage\n"), ("empty.onnx", b""), ("garbage.onnx", b"not onnx")):
        with open(os.path.join(work, name), "wb") as handle:
            handle.write(data)
    os.makedirs(os.path.join(work, "broken_frames"))
    open(os.path.join(work, "broken_frames", "a.jpg"), "wb").close()
    for name in ("old.jsonl", "old_summary.json", "old_report.json"):
        with open(os.path.join(work, name), "w") as handle:
            handle.write(OLD_JSONL)
    shutil.copy(os.path.join(work, "clip.mp4"), os.path.join(work, "old.mp4"))
    proto = onnx.load(model)
    info = deploy_info_from_onnx_model(proto)
    info.input_size = [info.input_size[0] + 128, info.input_size[1] + 128]
    write_onnx_metadata(proto, info)
    onnx.save(proto, os.path.join(work, "wrong_size.onnx"))
    proto = onnx.load(model)
    proto.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    onnx.save(proto, os.path.join(work, "float_input.onnx"))
    os.makedirs(os.path.join(work, "imgs"))
    for i in range(2):
        cv2.imwrite(os.path.join(work, "imgs", f"{i}.jpg"), np.full((64, 64, 3), 100 + i, np.uint8))
    good = {"images": [{"id": i, "file_name": f"{i}.jpg", "width": 64, "height": 64} for i in range(2)],
            "annotations": [{"id": i + 1, "image_id": i, "category_id": 1, "bbox": [5, 5, 30, 30], "area": 900,
                             "iscrowd": 0} for i in range(2)],
            "categories": [{"id": 1, "name": "person"}]}
    variants = {"ann.json": good,
                "ann_list.json": dict(good, annotations=[1, 2, 3]),
                "ann_width.json": dict(good, images=[dict(good["images"][0], width="wide")] + good["images"][1:]),
                "ann_id_list.json": dict(good, annotations=[dict(good["annotations"][0], image_id=[0])]),
                "ann_bbox_x.json": dict(good, annotations=[dict(good["annotations"][0], bbox="x")]),
                "ann_bbox_2.json": dict(good, annotations=[dict(good["annotations"][0], bbox=[1, 2])]),
                "ann_no_box.json": dict(good, annotations=[dict(a, bbox=[5, 5, 0, 0]) for a in good["annotations"]])}
    for name, data in variants.items():
        with open(os.path.join(work, name), "w") as handle:
            json.dump(data, handle)
    return [name for name in os.listdir(work) if os.path.isfile(os.path.join(work, name))]


def cases():
    """(name, argv, file-size limit or None, expect_success)."""
    run = ["run", "--engine", "model.onnx", "--headless"]
    clip = ["--source", "clip.mp4"]
    train = ["train", "--model", "lite0", "--train-images", "imgs", "--train-annotations", "ann.json",
             "--val-images", "imgs", "--val-annotations", "ann.json", "--output", "runs/x", "--init", "none",
             "--epochs", "1", "--no-progress"]
    return [
        ("run: --output equal to --source", run + clip + ["--output", "clip.mp4"], None, False),
        ("run: --output equal to --engine", run + clip + ["--output", "model.onnx"], None, False),
        ("run: --output x.mp4 --json x.mp4", run + clip + ["--output", "x.mp4", "--json", "x.mp4"], None, False),
        ("run: --json equal to --summary-json", run + clip + ["--json", "a.jsonl", "--summary-json", "a.jsonl"],
         None, False),
        ("run: --json /dev/null (device)", run + clip + ["--json", "/dev/null"], None, False),
        ("run: --json a folder", run + clip + ["--json", "imgs"], None, False),
        ("run: --output in a missing folder", run + clip + ["--output", "nowhere/out.mp4"], None, False),
        ("run: --output unknown extension", run + clip + ["--output", "out.txt"], None, False),
        ("run: --engine a folder", ["run", "--engine", "imgs", "--headless"] + clip, None, False),
        ("run: --engine missing", ["run", "--engine", "missing.onnx", "--headless"] + clip, None, False),
        ("run: --engine 0-byte ONNX", ["run", "--engine", "empty.onnx", "--headless"] + clip, None, False),
        ("run: --engine not ONNX", ["run", "--engine", "garbage.onnx", "--headless"] + clip, None, False),
        ("run: graph size != metadata", ["run", "--engine", "wrong_size.onnx", "--headless"] + clip, None, False),
        ("run: float input graph", ["run", "--engine", "float_input.onnx", "--headless"] + clip, None, False),
        ("run: --source missing", run + ["--source", "missing.mp4"], None, False),
        ("run: --source garbage video", run + ["--source", "garbage.mp4", "--json", "old.jsonl"], None, False),
        ("run: --source truncated video, old --json kept", run + ["--source", "trunc.mp4", "--json", "old.jsonl"],
         None, False),
        ("run: folder of a 0-byte jpg, old --json kept",
         run + ["--source", "broken_frames", "--json", "old.jsonl"], None, False),
        ("run: wrong-size graph, old --json kept",
         ["run", "--engine", "wrong_size.onnx", "--headless"] + clip + ["--json", "old.jsonl"], None, False),
        ("run: --reconnect -1", run + clip + ["--reconnect", "-1"], None, False),
        ("run: --max-frames 0", run + clip + ["--max-frames", "0"], None, False),
        ("run: --serve port 70000", run + clip + ["--serve", "70000"], None, False),
        ("run: disk full, --json over an old file", run + clip + ["--max-frames", "40", "--json", "old.jsonl"],
         3000, False),
        ("run: disk full, --output over an old video", run + clip + ["--max-frames", "40", "--output", "old.mp4"],
         3000, False),
        ("run: disk full, --summary-json over an old file",
         run + clip + ["--max-frames", "3", "--summary-json", "old_summary.json"], 600, False),
        ("run: --json - streams to stdout", run + clip + ["--max-frames", "3", "--json", "-"], None, True),
        ("eval: --output equal to --annotations",
         ["eval", "--model", "model.onnx", "--images", "imgs", "--annotations", "ann.json", "--output", "ann.json"],
         None, False),
        ("eval: --output a folder",
         ["eval", "--model", "model.onnx", "--images", "imgs", "--annotations", "ann.json", "--output", "imgs"],
         None, False),
        ("eval: bbox \"x\"", ["eval", "--model", "model.onnx", "--images", "imgs", "--annotations",
                              "ann_bbox_x.json"], None, False),
        ("eval: bbox [1, 2]", ["eval", "--model", "model.onnx", "--images", "imgs", "--annotations",
                               "ann_bbox_2.json"], None, False),
        ("eval: annotations [1, 2, 3]", ["eval", "--model", "model.onnx", "--images", "imgs", "--annotations",
                                         "ann_list.json"], None, False),
        ("eval: disk full, --output over an old report",
         ["eval", "--model", "model.onnx", "--images", "imgs", "--annotations", "ann.json", "--output",
          "old_report.json", "--no-progress"], 600, False),
        ("bench: --output a folder", ["bench", "--model", "model.onnx", "--output", "imgs", "--iterations", "2"],
         None, False),
        ("bench: --source missing", ["bench", "--model", "model.onnx", "--source", "missing.mp4"], None, False),
        ("bench: --warmup -1", ["bench", "--model", "model.onnx", "--warmup", "-1"], None, False),
        ("bench: --output equal to --model", ["bench", "--model", "model.onnx", "--output", "model.onnx"],
         None, False),
        ("info: --input-size 1280000", ["info", "d0", "--input-size", "1280000"], None, False),
        ("info: unknown model", ["info", "d9"], None, False),
        ("export: --input-size 128x128000", ["export", "--model", "lite0", "--weights", "random",
                                             "--input-size", "128x128000", "--output", "e.onnx"], None, False),
        ("export: --output in a missing folder", ["export", "--model", "lite0", "--weights", "random",
                                                  "--output", "nowhere/e.onnx"], None, False),
        ("convert: output equal to input", ["convert", "model.onnx", "model.onnx"], None, False),
        ("convert: disk full over an old file", ["convert", "model.onnx", "old_report.json"], 100000, False),
        ("calibrate: --output equal to --model",
         ["calibrate", "--model", "model.onnx", "--images", "imgs", "--output", "model.onnx"], None, False),
        ("calibrate: --images missing",
         ["calibrate", "--model", "model.onnx", "--images", "missing", "--output", "q.onnx"], None, False),
        ("train: --lr nan", train + ["--lr", "nan"], None, False),
        ("train: --lr -1", train + ["--lr", "-1"], None, False),
        ("train: width \"wide\"", [a if a != "ann.json" else "ann_width.json" for a in train], None, False),
        ("train: image_id a list", [a if a != "ann.json" else "ann_id_list.json" for a in train], None, False),
        ("train: annotations [1, 2, 3]", [a if a != "ann.json" else "ann_list.json" for a in train], None, False),
        ("train: every box invalid", [a if a != "ann.json" else "ann_no_box.json" for a in train], None, False),
    ]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a deploy ONNX from `edge-edet export`")
    parser.add_argument("--shared", default=os.path.join(os.path.dirname(REPO), "shared"))
    parser.add_argument("--only", default=None, help="run only the cases whose name contains this")
    args = parser.parse_args(argv)
    totals = {"cases": 0, "clean": 0, "tracebacks": 0, "data_lost": 0}
    print("| case | exit | outcome | first error line |")
    print("| --- | --- | --- | --- |")
    for name, argv_case, limit, expect_success in cases():
        if args.only and args.only not in name:
            continue
        with tempfile.TemporaryDirectory(prefix="robust_case_") as work:
            guards = prepare(work, os.path.abspath(args.model), args.shared)
            before = {g: digest(os.path.join(work, g)) for g in guards}
            rc, out, err = run_case(argv_case, work, limit)
            changed = [g for g in guards if not os.path.exists(os.path.join(work, g))
                       or digest(os.path.join(work, g)) != before[g]]
            leftovers = [n for n in os.listdir(work) if n.startswith(".")]
            if os.path.isdir(os.path.join(work, "runs", "x")):
                leftovers.append("runs/x (failed-start run folder)")
        errors = [line for line in err.splitlines() if "error:" in line]
        traceback = "Traceback" in err
        lost = bool(changed or leftovers)
        clean = (rc == 0) if expect_success else (rc != 0 and len(errors) == 1 and not traceback)
        totals["cases"] += 1
        totals["clean"] += clean and not lost
        totals["tracebacks"] += traceback
        totals["data_lost"] += lost
        outcome = "ok" if clean and not lost else ("TRACEBACK" if traceback else "LOST " + ", ".join(
            changed + leftovers) if lost else "UNCLEAN")
        first = (errors[0] if errors else "").replace("|", "\\|")[:160]
        print(f"| {name} | {rc} | {outcome} | {first} |", flush=True)
    print()
    print("| cases tried | clean refusals / successes | tracebacks | data lost |")
    print("| --- | --- | --- | --- |")
    print(f"| {totals['cases']} | {totals['clean']} | {totals['tracebacks']} | {totals['data_lost']} |")
    return 0 if totals["clean"] == totals["cases"] else 1


if __name__ == "__main__":
    sys.exit(main())
