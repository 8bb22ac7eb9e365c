"""Try the bad inputs and failures of issues 14 and 22 as a careful user would, and count the outcomes.

    python scripts/robust_cases.py --model person.onnx [--shared ../shared] [--only TEXT]

Each case runs `python -m edge_edet ...` in a child process (disk full = a file-size limit through
RLIMIT_FSIZE, SIGXFSZ ignored) in a scratch folder holding guard files: copies of the inputs and
old outputs, in subfolders too.  A case is a *clean refusal* when it exits non-zero with exactly one
`error:` line and no traceback (and, where the case names one, the line says what it should); *data
lost* when a guard file changed or a hidden partial or staging folder was left behind, anywhere in
the folder; a *hang* when it outlives its time or one SIGTERM.  Cases that should succeed count as
clean when they exit 0 without a traceback and their own check holds.
Some cases drive the child as a user would: a reader of `--json -` that stops reading, a preview
viewer that hangs up mid-answer or trickles its request, a FIFO nobody reads, standard output
closed; each then sends one SIGTERM and expects the run to end at once.  Cases that need what this
machine lacks (chattr, capsh, PyTriton) are listed as skipped, with the reason.  Prints one row per
case and the totals table.
"""
from __future__ import annotations

import argparse
import fcntl
import hashlib
import json
import os
import resource
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OLD_JSONL = "".join(json.dumps({"frame": i, "old": True}) + "\n" for i in range(50))
F_SETPIPE_SZ = 1031  # fcntl: shrink a pipe so a reader that stops reading is felt within a few lines


class Skip(Exception):
    """A case this machine cannot try (the reason is printed)."""


def digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha256(handle.read()).hexdigest()


def child_env(extra=None):
    return dict(os.environ, PYTHONPATH=REPO, **(extra or {}))


def _preexec(limit=None, close_stdout=False):
    def preexec():
        if limit:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        if close_stdout:
            os.close(1)
    return preexec if (limit or close_stdout) else None


def run_case(args, cwd, limit=None, timeout=300, env=None, close_stdout=False, prefix=()):
    """(exit code, stdout, stderr); a child still running after `timeout` s is killed and reported as a hang."""
    proc = subprocess.Popen(list(prefix) + [sys.executable, "-m", "edge_edet"] + list(args), cwd=cwd,
                            env=child_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_preexec(limit, close_stdout), start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the child and whatever it started (a Triton server)
        out, err = proc.communicate()
        return 124, out, err + f"\nHANG: still running after {timeout} s, killed"
    return proc.returncode, out, err


def start_child(args, cwd, env=None, stdout=subprocess.PIPE):
    err = tempfile.TemporaryFile(mode="w+")
    proc = subprocess.Popen([sys.executable, "-m", "edge_edet"] + list(args), cwd=cwd, env=child_env(env),
                            stdout=stdout, stderr=err, text=True, start_new_session=True)
    proc.err_file = err
    return proc


def stop_child(proc, wait=20.0):
    """One SIGTERM; (rc, stdout so far or '', stderr), rc None when it did not end within `wait` s."""
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=wait)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rc = None
    out = proc.stdout.read() if proc.stdout else ""
    proc.err_file.seek(0)
    return rc, out, proc.err_file.read()


def dead_pid():
    """The pid of a process that has ended (what kill -9 leaves behind names such a pid)."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def http_get(port, path, timeout=5.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(f"GET {path} HTTP/1.0\r\n\r\n".encode())
        chunks = []
        while True:
            data = sock.recv(65536)
            if not data:
                return b"".join(chunks)
            chunks.append(data)


def wait_for_preview(port, proc, seconds=120.0):
    deadline = time.time() + seconds
    while time.time() < deadline and proc.poll() is None:
        try:
            if http_get(port, "/frame.jpg").startswith(b"HTTP/1.0 200"):
                return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def chattr(flag, path):
    if not shutil.which("chattr"):
        raise Skip("no chattr here")
    if subprocess.run(["chattr", flag, path], capture_output=True).returncode != 0:
        raise Skip(f"chattr {flag} is not allowed here (needs CAP_LINUX_IMMUTABLE)")


def prepare(work, model, shared):
    """The scratch folder: inputs, old outputs (guards) and bad inputs."""
    import cv2
    import numpy as np
    import onnx

    from edge_edet.contract.metadata import METADATA_KEY, deploy_info_from_onnx_model, write_onnx_metadata

    video = os.path.join(shared, "data", "video", "cars_short.mp4")
    shutil.copy(video, os.path.join(work, "clip.mp4"))
    shutil.copy(model, os.path.join(work, "model.onnx"))
    with open(os.path.join(work, "clip.mp4"), "rb") as handle:
        head = handle.read(20000)
    with open(os.path.join(work, "trunc.mp4"), "wb") as handle:
        handle.write(head)
    for name, data in (("garbage.mp4", b"garbage\n"), ("empty.onnx", b""), ("garbage.onnx", b"not onnx"),
                       ("old_q.onnx", b"an old model\n"), ("labels.txt", b"old labels\n"),
                       ("config.pbtxt", b"old config\n")):
        with open(os.path.join(work, name), "wb") as handle:
            handle.write(data)
    os.makedirs(os.path.join(work, "broken_frames"))
    open(os.path.join(work, "broken_frames", "a.jpg"), "wb").close()
    for name in ("old.jsonl", "old_summary.json", "old_report.json"):
        with open(os.path.join(work, name), "w") as handle:
            handle.write(OLD_JSONL)
    shutil.copy(os.path.join(work, "clip.mp4"), os.path.join(work, "old.mp4"))
    os.makedirs(os.path.join(work, "repo", "m"))  # a Triton repository whose model folder holds an input
    shutil.copy(model, os.path.join(work, "repo", "m", "my.onnx"))
    proto = onnx.load(model)
    info = deploy_info_from_onnx_model(proto)
    info.input_size = [info.input_size[0] + 128, info.input_size[1] + 128]
    write_onnx_metadata(proto, info)
    onnx.save(proto, os.path.join(work, "wrong_size.onnx"))
    proto = onnx.load(model)
    proto.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    onnx.save(proto, os.path.join(work, "float_input.onnx"))
    proto = onnx.load(model)
    for prop in proto.metadata_props:
        if prop.key == METADATA_KEY:
            data = json.loads(prop.value)
            data["labels"] = []
            prop.value = json.dumps(data)
    onnx.save(proto, os.path.join(work, "no_labels.onnx"))
    os.makedirs(os.path.join(work, "imgs"))
    for i in range(2):
        cv2.imwrite(os.path.join(work, "imgs", f"{i}.jpg"), np.full((64, 64, 3), 100 + i, np.uint8))
    cv2.imwrite(os.path.join(work, "dot.png"), np.full((1, 1, 3), 90, np.uint8))
    cv2.imwrite(os.path.join(work, "line.png"), np.full((4000, 1, 3), 90, np.uint8))
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
                "ann_no_box.json": dict(good, annotations=[dict(a, bbox=[5, 5, 0, 0]) for a in good["annotations"]]),
                "ann_dup_ids.json": dict(good, images=[good["images"][0], dict(good["images"][1], id=0)]),
                "ann_huge_box.json": dict(good, annotations=[dict(good["annotations"][0], bbox=[1e308, 5, 1e308, 30]),
                                                             good["annotations"][1]])}
    for name, data in variants.items():
        with open(os.path.join(work, name), "w") as handle:
            json.dump(data, handle)
    return guard_files(work)


def guard_files(work):
    guards = []
    for folder, dirs, files in os.walk(work):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        guards += [os.path.relpath(os.path.join(folder, f), work) for f in files if not f.startswith(".")]
    return guards


def hidden_leftovers(work):
    """Hidden files and folders anywhere in the scratch folder: partials, staging folders, '.old' copies."""
    found = []
    for folder, dirs, files in os.walk(work):
        found += [os.path.relpath(os.path.join(folder, n), work) for n in dirs + files if n.startswith(".")]
        dirs[:] = [d for d in dirs if not d.startswith(".")]
    return found


# -- cases that drive the child as a user would -------------------------------------------------------
def stalled_reader(args, work):
    """`run --json -` into a pipe nobody reads any more; then one SIGTERM must end the run."""
    proc = start_child(args, work)
    fcntl.fcntl(proc.stdout.fileno(), F_SETPIPE_SZ, 4096)
    time.sleep(12)  # model load, then the pipe fills and the run blocks on it
    started = time.time()
    rc, _, err = stop_child(proc, wait=15)
    if rc is None:
        return 1, "", err + "\nHANG: one SIGTERM did not stop the run within 15 s"
    return rc, "", err + f"\n(stopped {time.time() - started:.1f} s after the SIGTERM)"


def fifo_without_reader(args, work):
    os.mkfifo(os.path.join(work, "dets.fifo"))
    proc = start_child(args, work, stdout=subprocess.DEVNULL)
    time.sleep(10)
    rc, out, err = stop_child(proc, wait=15)
    return (1 if rc is None else rc), out, err + ("\nHANG: one SIGTERM did not stop the run" if rc is None else "")


def preview_viewers(kind):
    """A run serving its preview; viewers that hang up mid-answer ('reset') or trickle header lines for
    longer than the request limit ('slow'); then a real viewer must get the frame, and one SIGTERM
    ends the run cleanly."""
    def drive(args, work):
        port = free_port()
        proc = start_child(args + ["--serve", str(port)], work)
        if not wait_for_preview(port, proc):
            rc, out, err = stop_child(proc)
            return 1, out, err + "\nthe preview never served a frame"
        note = ""
        if kind == "reset":
            for _ in range(10):
                sock = socket.create_connection(("127.0.0.1", port), timeout=5)
                sock.sendall(b"GET /frame.jpg HTTP/1.1\r\nHost: x\r\n\r\n")
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.close()
        else:
            from edge_edet.runtime import mjpeg

            slow = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(mjpeg.MAX_CLIENTS)]
            for sock in slow:
                sock.sendall(b"GET /frame.jpg HTTP/1.1\r\n")
            ends = time.time() + getattr(mjpeg, "REQUEST_TIMEOUT_S", mjpeg.IDLE_TIMEOUT_S) + 3
            while time.time() < ends:  # one header line every 2 s: never idle for a whole read
                time.sleep(2)
                for sock in slow:
                    try:
                        sock.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        pass
            answer = http_get(port, "/frame.jpg")
            for sock in slow:
                sock.close()
            if not answer.startswith(b"HTTP/1.0 200"):
                note = f"\nwhile slow clients trickled, a viewer got {answer[:40]!r}, not the frame"
        time.sleep(1)
        rc, out, err = stop_child(proc)
        if rc is None:
            return 1, out, err + "\nHANG: one SIGTERM did not stop the run"
        return (1 if note else rc), out, err + note
    return drive


def serve_sweeps(args, work):
    """serve with a killed server's log folder in TMPDIR: started, stopped with one SIGTERM, and both
    that folder and its own are gone."""
    try:
        import pytriton  # noqa: F401
    except ImportError:
        raise Skip("PyTriton is not installed") from None
    scratch = tempfile.mkdtemp(prefix="robust_tmp_")
    try:
        stale = os.path.join(scratch, f"edge_edet_triton_{dead_pid()}_x")
        os.makedirs(stale)
        open(os.path.join(stale, "triton.log"), "w").close()
        ports = [str(free_port()) for _ in range(3)]
        proc = start_child(args + ["--http-port", ports[0], "--grpc-port", ports[1], "--metrics-port", ports[2]],
                           work, env={"TMPDIR": scratch})
        deadline = time.time() + 180
        started = False
        while time.time() < deadline and proc.poll() is None:
            if not os.path.isdir(stale) and any(n.startswith("edge_edet_triton_") for n in os.listdir(scratch)):
                started = True
                break
            time.sleep(1)
        time.sleep(3)
        rc, out, err = stop_child(proc, wait=60)
        left = [n for n in os.listdir(scratch) if n.startswith("edge_edet_")]
        if not started:
            err += "\nthe server never started (or the stale log folder was not swept)"
            rc = rc or 1
        if left:
            err += f"\nleft in TMPDIR: {', '.join(left)}"
            rc = rc or 1
        return (1 if rc is None else rc), out, err
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# -- setups and checks ----------------------------------------------------------------------------------
def immutable(name, flag="+i"):
    def setup(work):
        chattr(flag, os.path.join(work, name))
    return setup


def unlock(name):
    def teardown(work):
        subprocess.run(["chattr", "-i", "-a", os.path.join(work, name)], capture_output=True)
    return teardown


def sticky_other_user(work):
    """old.jsonl, owned by another user, in another user's sticky world-writable folder (as /tmp is for a
    user); as root the child runs without CAP_FOWNER (capsh), which is what lets root replace it."""
    if os.geteuid() == 0 and not shutil.which("capsh"):
        raise Skip("running as root without capsh to drop CAP_FOWNER")
    folder = os.path.join(work, "sticky")
    os.makedirs(folder)
    os.chmod(folder, 0o1777)
    shutil.copy(os.path.join(work, "old.jsonl"), os.path.join(folder, "their.jsonl"))
    if os.geteuid() == 0:  # the folder and the file belong to someone else (nobody), as /tmp does to root
        os.chown(os.path.join(folder, "their.jsonl"), 65534, 65534)
        os.chown(folder, 65534, 65534)
    elif os.stat(os.path.join(folder, "their.jsonl")).st_uid == os.geteuid():
        raise Skip("not root: cannot give a file to another user")


def stale_checkpoint(work):
    os.makedirs(os.path.join(work, "runs", "x"))
    with open(os.path.join(work, "runs", "x", f".edge_edet-{dead_pid()}-abc123.pth.tmp"), "wb") as handle:
        handle.write(b"half a checkpoint")


def stale_staging(work):
    os.makedirs(os.path.join(work, f".edge_edet-{dead_pid()}-repo-abc123.tmp", "m"))


def noise_image(work):
    """A 1920x1080 frame of noise: its JPEG outgrows the socket buffer, so a viewer that hangs up is
    felt by the server mid-answer (a small frame would be sent whole before the reset arrives)."""
    import cv2
    import numpy as np

    image = np.random.default_rng(0).integers(0, 255, (1080, 1920, 3), dtype=np.uint8)
    cv2.imwrite(os.path.join(work, "noise.jpg"), image, [cv2.IMWRITE_JPEG_QUALITY, 95])


def make_fifo(work):
    os.mkfifo(os.path.join(work, "source.fifo"))


def finished_run(work):
    rc, _, err = run_case(TRAIN_ARGS + ["--workers", "0"], work)
    if rc != 0:
        raise RuntimeError(f"setup: the first training run failed: {err[-300:]}")


def file_lines(name, count):
    def check(work, out, err):
        path = os.path.join(work, name)
        if not os.path.isfile(path):
            return f"{name} was not written"
        with open(path) as handle:
            lines = handle.read().splitlines()
        return None if len(lines) == count else f"{name} holds {len(lines)} lines, not {count}"
    return check


def absent(*names):
    def check(work, out, err):
        there = [n for n in names if os.path.exists(os.path.join(work, n))]
        return f"still there: {', '.join(there)}" if there else None
    return check


def present(*names):
    def check(work, out, err):
        missing = [n for n in names if not os.path.isfile(os.path.join(work, n))]
        return f"not written: {', '.join(missing)}" if missing else None
    return check


def says(text, where="err", forbidden=()):
    def check(work, out, err):
        stream = err if where == "err" else out
        if text not in stream:
            return f"missing {text!r} in std{where}"
        bad = [word for word in forbidden if word in out + err]
        return f"printed {', '.join(map(repr, bad))}" if bad else None
    return check


def no_sticky_leftovers(work, out, err):
    return None if sorted(os.listdir(os.path.join(work, "sticky"))) == ["their.jsonl"] else "left a file in sticky/"


TRAIN_ARGS = ["train", "--model", "lite0", "--train-images", "imgs", "--train-annotations", "ann.json",
              "--val-images", "imgs", "--val-annotations", "ann.json", "--output", "runs/x", "--init", "none",
              "--epochs", "1", "--no-progress"]


def cases():
    """(name, argv, file-size limit or None, expect_success, extra) where extra may hold: setup(work),
    teardown(work), drive(argv, work) -> (rc, out, err) instead of a plain run, expect (text of the
    error line), check(work, out, err) -> problem or None, close_stdout, prefix (a wrapper command)."""
    run = ["run", "--engine", "model.onnx", "--headless"]
    clip = ["--source", "clip.mp4"]
    train = TRAIN_ARGS
    evaluate = ["eval", "--model", "model.onnx", "--images", "imgs", "--no-progress", "--annotations"]
    ports = ["--http-port", str(free_port()), "--grpc-port", str(free_port()), "--metrics-port", str(free_port())]
    no_fowner = ["capsh", "--drop=cap_fowner", "--", "-c", 'exec "$0" "$@"'] if os.geteuid() == 0 else []
    return [
        ("run: --output equal to --source", run + clip + ["--output", "clip.mp4"], None, False, {}),
        ("run: --output equal to --engine", run + clip + ["--output", "model.onnx"], None, False, {}),
        ("run: --output x.mp4 --json x.mp4", run + clip + ["--output", "x.mp4", "--json", "x.mp4"], None, False, {}),
        ("run: --json equal to --summary-json", run + clip + ["--json", "a.jsonl", "--summary-json", "a.jsonl"],
         None, False, {}),
        ("run: --json /dev/null (device)", run + clip + ["--json", "/dev/null"], None, False, {}),
        ("run: --json a folder", run + clip + ["--json", "imgs"], None, False, {}),
        ("run: --output in a missing folder", run + clip + ["--output", "nowhere/out.mp4"], None, False, {}),
        ("run: --output unknown extension", run + clip + ["--output", "out.txt"], None, False, {}),
        ("run: --engine a folder", ["run", "--engine", "imgs", "--headless"] + clip, None, False, {}),
        ("run: --engine missing", ["run", "--engine", "missing.onnx", "--headless"] + clip, None, False, {}),
        ("run: --engine 0-byte ONNX", ["run", "--engine", "empty.onnx", "--headless"] + clip, None, False, {}),
        ("run: --engine not ONNX", ["run", "--engine", "garbage.onnx", "--headless"] + clip, None, False, {}),
        ("run: graph size != metadata", ["run", "--engine", "wrong_size.onnx", "--headless"] + clip, None, False, {}),
        ("run: float input graph", ["run", "--engine", "float_input.onnx", "--headless"] + clip, None, False, {}),
        ("run: --source missing", run + ["--source", "missing.mp4"], None, False, {}),
        ("run: --source garbage video", run + ["--source", "garbage.mp4", "--json", "old.jsonl"], None, False, {}),
        ("run: --source truncated video, old --json kept", run + ["--source", "trunc.mp4", "--json", "old.jsonl"],
         None, False, {}),
        ("run: folder of a 0-byte jpg, old --json kept",
         run + ["--source", "broken_frames", "--json", "old.jsonl"], None, False, {}),
        ("run: wrong-size graph, old --json kept",
         ["run", "--engine", "wrong_size.onnx", "--headless"] + clip + ["--json", "old.jsonl"], None, False, {}),
        ("run: --reconnect -1", run + clip + ["--reconnect", "-1"], None, False, {}),
        ("run: --max-frames 0", run + clip + ["--max-frames", "0"], None, False, {}),
        ("run: --serve port 70000", run + clip + ["--serve", "70000"], None, False, {}),
        ("run: disk full, --json over an old file", run + clip + ["--max-frames", "40", "--json", "old.jsonl"],
         3000, False, {}),
        ("run: disk full, --output over an old video", run + clip + ["--max-frames", "40", "--output", "old.mp4"],
         3000, False, {}),
        ("run: disk full, --summary-json over an old file",
         run + clip + ["--max-frames", "3", "--summary-json", "old_summary.json"], 600, False, {}),
        ("run: --json - streams to stdout", run + clip + ["--max-frames", "3", "--json", "-"], None, True, {}),
        ("eval: --output equal to --annotations", evaluate + ["ann.json", "--output", "ann.json"], None, False, {}),
        ("eval: --output a folder", evaluate + ["ann.json", "--output", "imgs"], None, False, {}),
        ("eval: bbox \"x\"", evaluate + ["ann_bbox_x.json"], None, False, {}),
        ("eval: bbox [1, 2]", evaluate + ["ann_bbox_2.json"], None, False, {}),
        ("eval: annotations [1, 2, 3]", evaluate + ["ann_list.json"], None, False, {}),
        ("eval: disk full, --output over an old report", evaluate + ["ann.json", "--output", "old_report.json"],
         600, False, {}),
        ("bench: --output a folder", ["bench", "--model", "model.onnx", "--output", "imgs", "--iterations", "2"],
         None, False, {}),
        ("bench: --source missing", ["bench", "--model", "model.onnx", "--source", "missing.mp4"], None, False, {}),
        ("bench: --warmup -1", ["bench", "--model", "model.onnx", "--warmup", "-1"], None, False, {}),
        ("bench: --output equal to --model", ["bench", "--model", "model.onnx", "--output", "model.onnx"],
         None, False, {}),
        ("info: --input-size 1280000", ["info", "d0", "--input-size", "1280000"], None, False, {}),
        ("info: unknown model", ["info", "d9"], None, False, {}),
        ("export: --input-size 128x128000", ["export", "--model", "lite0", "--weights", "random",
                                             "--input-size", "128x128000", "--output", "e.onnx"], None, False, {}),
        ("export: --output in a missing folder", ["export", "--model", "lite0", "--weights", "random",
                                                  "--output", "nowhere/e.onnx"], None, False, {}),
        ("convert: output equal to input", ["convert", "model.onnx", "model.onnx"], None, False, {}),
        ("convert: disk full over an old file", ["convert", "model.onnx", "old_q.onnx"], 100000, False, {}),
        ("calibrate: --output equal to --model",
         ["calibrate", "--model", "model.onnx", "--images", "imgs", "--output", "model.onnx"], None, False, {}),
        ("calibrate: --images missing",
         ["calibrate", "--model", "model.onnx", "--images", "missing", "--output", "q.onnx"], None, False, {}),
        ("train: --lr nan", train + ["--lr", "nan"], None, False, {}),
        ("train: --lr -1", train + ["--lr", "-1"], None, False, {}),
        ("train: width \"wide\"", [a if a != "ann.json" else "ann_width.json" for a in train], None, False, {}),
        ("train: image_id a list", [a if a != "ann.json" else "ann_id_list.json" for a in train], None, False, {}),
        ("train: annotations [1, 2, 3]", [a if a != "ann.json" else "ann_list.json" for a in train], None, False, {}),
        ("train: every box invalid", [a if a != "ann.json" else "ann_no_box.json" for a in train], None, False, {}),
        # -- issue 22: data lost -------------------------------------------------------------------------
        ("triton-repo: --name .. (labels.txt, config.pbtxt above the repo)",
         ["triton-repo", "--engine", "model.onnx", "--repo", "newrepo", "--name", ".."], None, False,
         {"expect": "not a Triton model name", "check": absent("newrepo")}),
        ("triton-repo: --name a/b", ["triton-repo", "--engine", "model.onnx", "--repo", "newrepo", "--name", "a/b"],
         None, False, {"expect": "not a Triton model name"}),
        ("serve: --name ..", ["serve", "--engine", "model.onnx", "--name", ".."] + ports, None, False,
         {"expect": "not a Triton model name", "timeout": 120}),
        ("triton-repo --force: the input lies in the folder it replaces",
         ["triton-repo", "--engine", "repo/m/my.onnx", "--repo", "repo", "--name", "m", "--force"], None, False,
         {"expect": "lies inside"}),
        ("triton-repo --force: --name . (no hidden .old folder left)",
         ["triton-repo", "--engine", "model.onnx", "--repo", "repo", "--name", ".", "--force"], None, False,
         {"expect": "not a Triton model name"}),
        ("triton-repo --force: another model replaced, a killed run's staging folder swept",
         ["triton-repo", "--engine", "model.onnx", "--repo", "repo", "--name", "m2", "--force"], None, True,
         {"setup": stale_staging, "check": present("repo/m2/config.pbtxt", "repo/m2/1/model.onnx")}),
        # -- issue 22: tracebacks -> one sentence that says what was kept --------------------------------------
        ("run: --json over an immutable file", run + clip + ["--max-frames", "3", "--json", "old.jsonl"], None, False,
         {"setup": immutable("old.jsonl"), "teardown": unlock("old.jsonl"), "expect": "cannot be replaced"}),
        ("run: --output over an immutable video", run + clip + ["--max-frames", "3", "--output", "old.mp4"], None,
         False, {"setup": immutable("old.mp4"), "teardown": unlock("old.mp4"), "expect": "cannot be replaced"}),
        ("run: --json over an append-only file (the rename is refused at the end)",
         run + clip + ["--max-frames", "3", "--json", "old.jsonl"], None, False,
         {"setup": immutable("old.jsonl", "+a"), "teardown": unlock("old.jsonl"),
          "expect": "could not be put in place"}),
        ("run: --json over another user's file in a sticky folder, without CAP_FOWNER",
         run + clip + ["--max-frames", "3", "--json", "sticky/their.jsonl"], None, False,
         {"setup": sticky_other_user, "prefix": no_fowner, "expect": "sticky folder",
          "check": no_sticky_leftovers}),
        ("train: disk full writing labels.txt", train, 5, False, {"expect": "labels.txt"}),
        ("train: disk full at the first checkpoint", train + ["--workers", "0"], 1000000, False,
         {"expect": "last.pth"}),
        ("train: disk full in the data-loading workers' shared memory", train, 1000000, False,
         {"expect": "shared memory"}),
        ("calibrate: disk full writing its scratch model",
         ["calibrate", "--model", "model.onnx", "--images", "imgs", "--output", "q.onnx", "--no-progress"], 100000,
         False, {"expect": "scratch files"}),
        ("triton-repo: disk full copying the model", ["triton-repo", "--engine", "model.onnx", "--repo", "newrepo"],
         100000, False, {"expect": "was not created", "check": absent("newrepo")}),
        ("export: --opset 5", ["export", "--model", "lite0", "--output", "e.onnx", "--opset", "5"], None, False,
         {"expect": "13 to 17"}),
        ("export: --opset 99", ["export", "--model", "lite0", "--output", "e.onnx", "--opset", "99"], None, False,
         {"expect": "13 to 17"}),
        ("export: --help explains --opset", ["export", "--help"], None, True, {"check": says("13 to 17", "out")}),
        ("run: --json - with standard output closed", run + clip + ["--max-frames", "3", "--json", "-"], None, False,
         {"close_stdout": True, "expect": "standard output is closed"}),
        ("run: preview viewers hang up right after GET /frame.jpg", run + ["--source", "noise.jpg", "--loop"], None,
         True, {"setup": noise_image, "drive": preview_viewers("reset")}),
        # -- issue 22: hangs -------------------------------------------------------------------------------
        ("run: --threads 100000", run + clip + ["--threads", "100000"], None, False, {"expect": "CPU core"}),
        ("train: --workers 100000", train + ["--workers", "100000"], None, False, {"expect": "CPU core"}),
        ("serve: --instances 100000", ["serve", "--engine", "model.onnx", "--instances", "100000"] + ports, None,
         False, {"expect": "CPU core", "timeout": 120}),
        ("bench: --batch 100000000", ["bench", "--model", "model.onnx", "--batch", "100000000"], None, False,
         {"expect": "memory"}),
        ("train: --batch-size 10000000", train + ["--batch-size", "10000000"], None, False, {"expect": "memory"}),
        ("export: --batch 100000000", ["export", "--model", "lite0", "--output", "e.onnx", "--batch", "100000000"],
         None, False, {"expect": "memory"}),
        ("calibrate: --num-images 1000000000",
         ["calibrate", "--model", "model.onnx", "--images", "imgs", "--output", "q.onnx", "--num-images",
          "1000000000"], None, False, {"expect": "memory"}),
        ("run: the reader of --json - stops reading; one SIGTERM stops the run",
         run + clip + ["--loop", "--json", "-"], None, True,
         {"drive": stalled_reader, "check": says("stopped reading")}),
        ("run: 32 slow clients trickle header lines; a viewer still gets the frame", run + clip + ["--loop"], None,
         True, {"drive": preview_viewers("slow")}),
        # -- issue 22: left behind after kill -9 --------------------------------------------------------------
        ("train: a killed run's .pth.tmp is swept by the next run in that folder", train + ["--workers", "0"], None,
         True, {"setup": stale_checkpoint}),
        ("serve: a killed server's TMPDIR log folder is swept", ["serve", "--engine", "model.onnx"], None, True,
         {"drive": serve_sweeps}),
        # -- issue 22: wrong or unclear --------------------------------------------------------------------------
        ("run: --source /dev/zero", run + ["--source", "/dev/zero"], None, False, {"expect": "is a device"}),
        ("run: --source a FIFO", run + ["--source", "source.fifo"], None, False,
         {"setup": make_fifo, "expect": "FIFO"}),
        ("run: --source ftp://host/x.mp4", run + ["--source", "ftp://host/x.mp4"], None, False, {"expect": "ftp://"}),
        ("run: --output ftp://host/x.mp4", run + clip + ["--output", "ftp://host/x.mp4"], None, False,
         {"expect": "ftp://"}),
        ("run: --output DIR/ naming the image folder being read (images would replace themselves)",
         run + ["--source", "imgs", "--output", "imgs/"], None, False, {"expect": "holds the source's images"}),
        ("run: --output DIR/ for an image folder writes one annotated image per frame",
         run + ["--source", "imgs", "--output", "annotated/"], None, True,
         {"check": present("annotated/0.jpg", "annotated/1.jpg")}),
        ("run: a 1x1 image with --output out.mp4 (the JSON is still written)",
         run + ["--source", "dot.png", "--output", "out.mp4", "--json", "out.jsonl"], None, False,
         {"expect": "1x1", "check": file_lines("out.jsonl", 1)}),
        ("run: a 1x4000 image with --output out.mp4 (the JSON is still written)",
         run + ["--source", "line.png", "--output", "out.mp4", "--json", "out.jsonl"], None, False,
         {"expect": "1x4000", "check": file_lines("out.jsonl", 1)}),
        ("train --resume of a finished run", train + ["--resume", "--workers", "0"], None, True,
         {"setup": finished_run, "check": says("already finished", "out", forbidden=("nan",))}),
        ("eval: duplicate image ids", evaluate + ["ann_dup_ids.json"], None, False, {"expect": "share the id"}),
        ("train: duplicate image ids", [a if a != "ann.json" else "ann_dup_ids.json" for a in train], None, False,
         {"expect": "share the id"}),
        ("run: a model whose label list is empty", ["run", "--engine", "no_labels.onnx", "--headless"] + clip, None,
         False, {"expect": "label list is empty"}),
        ("run: a zone of zero area", run + clip + ["--zone", "0,0,100,0,200,0"], None, False, {"expect": "no area"}),
        ("export: --output e.txt", ["export", "--model", "lite0", "--output", "e.txt"], None, False,
         {"expect": ".onnx"}),
        ("train: --max-minutes -1 (refused before setup)", train + ["--max-minutes", "-1"], None, False,
         {"expect": "argument --max-minutes"}),
        ("run: --json into a FIFO nobody reads says so; one SIGTERM stops it",
         run + clip + ["--json", "dets.fifo"], None, True,
         {"drive": fifo_without_reader, "ok_codes": (143,), "check": says("waiting for a reader")}),
        ("train: a box at 1e308 (no NumPy warning)",
         [a if a != "ann.json" else "ann_huge_box.json" for a in train] + ["--workers", "0"], None, True,
         {"check": says("outside their image", forbidden=("RuntimeWarning", "overflow"))}),
    ]


def try_case(name, argv, limit, expect_success, extra, work):
    """(rc, out, err, problem) of one case; Skip when this machine cannot try it."""
    if extra.get("setup"):
        extra["setup"](work)
    try:
        if extra.get("drive"):
            rc, out, err = extra["drive"](argv, work)
        else:
            rc, out, err = run_case(argv, work, limit, timeout=extra.get("timeout", 300),
                                    close_stdout=extra.get("close_stdout", False), prefix=extra.get("prefix", ()))
    finally:
        if extra.get("teardown"):
            extra["teardown"](work)
    problem = None
    errors = [line for line in err.splitlines() if "error:" in line]
    if extra.get("expect") and not (errors and extra["expect"] in errors[0]):
        problem = f"the error does not say {extra['expect']!r}"
    if extra.get("check"):
        problem = problem or extra["check"](work, out, err)
    return rc, out, err, problem


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="a deploy ONNX from `edge-edet export`")
    parser.add_argument("--shared", default=os.path.join(os.path.dirname(REPO), "shared"))
    parser.add_argument("--only", default=None, help="run only the cases whose name contains this")
    args = parser.parse_args(argv)
    totals = {"cases": 0, "clean": 0, "tracebacks": 0, "hangs": 0, "data_lost": 0, "skipped": 0}
    print("| case | exit | outcome | first error line |")
    print("| --- | --- | --- | --- |")
    for name, argv_case, limit, expect_success, extra in cases():
        if args.only and args.only not in name:
            continue
        with tempfile.TemporaryDirectory(prefix="robust_case_") as work:
            guards = prepare(work, os.path.abspath(args.model), args.shared)
            before = {g: digest(os.path.join(work, g)) for g in guards}
            try:
                rc, out, err, problem = try_case(name, argv_case, limit, expect_success, extra, work)
            except Skip as reason:
                totals["skipped"] += 1
                print(f"| {name} | - | skipped: {reason} | |", flush=True)
                continue
            changed = [g for g in guards if not os.path.exists(os.path.join(work, g))
                       or digest(os.path.join(work, g)) != before[g]]
            leftovers = hidden_leftovers(work)
            if not expect_success and os.path.isdir(os.path.join(work, "runs", "x")) and "setup" not in extra:
                leftovers.append("runs/x (failed-start run folder)")
        errors = [line for line in err.splitlines() if "error:" in line]
        traceback = "Traceback" in err
        hang = "HANG:" in err
        lost = bool(changed or leftovers)
        ok_codes = (0,) + tuple(extra.get("ok_codes", ()))
        if expect_success:
            clean = rc in ok_codes and not traceback
        else:
            clean = rc != 0 and len(errors) == 1 and not traceback
        clean = clean and not problem
        totals["cases"] += 1
        totals["clean"] += clean and not lost
        totals["tracebacks"] += traceback
        totals["hangs"] += hang
        totals["data_lost"] += lost
        if clean and not lost:
            outcome = "ok"
        elif traceback or hang:
            outcome = "TRACEBACK" if traceback else "HANG"
        else:
            outcome = ("LOST " + ", ".join(changed + leftovers) if lost
                       else "UNCLEAN" + (f" ({problem})" if problem else ""))
        first = (errors[0] if errors else "").replace("|", "\\|")[:200]
        print(f"| {name} | {rc} | {outcome} | {first} |", flush=True)
        if not (clean and not lost):
            print("    " + "\n    ".join((err.strip().splitlines() or [""])[-6:]), file=sys.stderr, flush=True)
    print()
    print("| cases tried | clean refusals / successes | tracebacks | hangs | data lost | skipped (this machine) |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| {totals['cases']} | {totals['clean']} | {totals['tracebacks']} | {totals['hangs']} "
          f"| {totals['data_lost']} | {totals['skipped']} |")
    return 0 if totals["clean"] == totals["cases"] else 1


if __name__ == "__main__":
    sys.exit(main())
