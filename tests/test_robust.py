"""Issue 14: nothing lost, ever; every bad input refused before work starts.

Disk full is a file-size limit (`resource.setrlimit(RLIMIT_FSIZE)`, SIGXFSZ ignored so writes fail
with EFBIG) in a child process: portable, no mount needed.  Every refusal is one sentence, exit 2,
no traceback, and the file that was there before is byte for byte the same afterwards.
"""
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from edge_edet.contract.config import ConfigError, get_config
from edge_edet.contract.errors import EdgeEdetError
from edge_edet.contract.fileio import (check_distinct_outputs, check_output_file, partial_name,
                                       remove_stale_work_folders, write_text_atomic)

from conftest import REPO, shared_path

OLD_LINES = "".join(json.dumps({"frame": i, "old": True}) + "\n" for i in range(50))


def _limit_file_size(limit):
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return preexec


def cli(args, cwd, limit=None, timeout=300):
    """`python -m edge_edet ARGS` in a child (optionally under a file-size limit): (rc, stdout, stderr)."""
    env = dict(os.environ, PYTHONPATH=REPO)
    proc = subprocess.run([sys.executable, "-m", "edge_edet"] + list(args), cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, preexec_fn=_limit_file_size(limit) if limit else None)
    return proc.returncode, proc.stdout, proc.stderr


def assert_one_sentence(rc, err, *words):
    assert rc == 2, err
    assert "Traceback" not in err, err
    error_lines = [line for line in err.splitlines() if "error:" in line]
    assert len(error_lines) == 1, err
    for word in words:
        assert word in error_lines[0], err


def hidden(folder):
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


# -- contract/fileio: one output-path check for every command ------------------------------------
def test_output_may_not_replace_an_input_or_another_output(tmp_path):
    source = tmp_path / "clip.mp4"
    source.write_bytes(b"video")
    with pytest.raises(EdgeEdetError, match="is the input given as --source"):
        check_output_file(str(source), "--output", inputs=[("--source", str(source))])
    link = tmp_path / "link.mp4"
    link.symlink_to(source)
    with pytest.raises(EdgeEdetError, match="is the input"):
        check_output_file(str(link), "--output", inputs=[("--source", str(source))])
    with pytest.raises(EdgeEdetError, match="are the same file"):
        check_distinct_outputs([("--output", str(tmp_path / "x.mp4")), ("--json", str(tmp_path / "x.mp4"))])
    check_distinct_outputs([("--output", str(tmp_path / "x.mp4")), ("--json", str(tmp_path / "x.jsonl")),
                            ("--summary-json", None)])


def test_output_may_not_be_a_folder_fifo_or_device(tmp_path):
    fifo = tmp_path / "f.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(EdgeEdetError, match="is a FIFO"):
        check_output_file(str(fifo), "--output")
    assert check_output_file(str(fifo), "--json", stream_ok=True) == str(fifo)  # a stream target, kept
    with pytest.raises(EdgeEdetError, match="device or special file"):
        check_output_file("/dev/null", "--json")
    with pytest.raises(EdgeEdetError, match="is a folder"):
        check_output_file(str(tmp_path), "--json")
    with pytest.raises(EdgeEdetError, match="standard output"):
        check_output_file("-", "--summary-json")


def test_symlinked_output_writes_its_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "real.json"
    target.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    write_text_atomic(check_output_file(str(link)), "new")
    assert link.is_symlink() and target.read_text() == "new"


def test_stale_partials_of_dead_processes_are_removed(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f".out.{dead.pid}.partial.mp4"
    stale_tmp = tmp_path / f".edge_edet-{dead.pid}-abc.json.tmp"
    mine = tmp_path / os.path.basename(partial_name(str(tmp_path / "out.mp4")))
    for path in (stale, stale_tmp, mine):
        path.write_bytes(b"x")
    check_output_file(str(tmp_path / "out.mp4"), "--output")
    assert not stale.exists() and not stale_tmp.exists() and mine.exists()
    folder = tmp_path / f"edge_edet_calib_{dead.pid}_xyz"
    folder.mkdir()
    (folder / "full.onnx").write_bytes(b"x" * 10)
    live = tmp_path / f"edge_edet_calib_{os.getpid()}_xyz"
    live.mkdir()
    assert remove_stale_work_folders(str(tmp_path)) == [folder.name]
    assert live.exists()


def test_atomic_write_on_a_full_disk_is_one_sentence_and_keeps_the_old_file(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old report\n")
    code = ("import sys; from edge_edet.contract.fileio import write_text_atomic\n"
            "from edge_edet.contract.cli import guarded\n"
            f"sys.exit(guarded(lambda: write_text_atomic({str(target)!r}, 'x' * 100000)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env=dict(os.environ, PYTHONPATH=REPO), preexec_fn=_limit_file_size(4096))
    assert_one_sentence(proc.returncode, proc.stderr, str(target), "File too large")
    assert target.read_text() == "old report\n" and hidden(tmp_path) == []


def test_sigterm_removes_temporary_files_and_folders(tmp_path):
    """guarded() turns SIGTERM into an exception: atomic_output and work_folder clean up, exit 143."""
    target = tmp_path / "model.onnx"
    code = ("import os, sys, time, tempfile\n"
            "from edge_edet.contract.cli import guarded\n"
            "from edge_edet.contract.fileio import atomic_output, work_folder\n"
            "def job():\n"
            f"    with work_folder('calib') as folder, atomic_output({str(target)!r}) as tmp:\n"
            "        open(tmp, 'w').write('half'); print(folder, flush=True); time.sleep(60)\n"
            "sys.exit(guarded(job))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, PYTHONPATH=REPO))
    folder = proc.stdout.readline().strip()
    assert os.path.isdir(folder) and len(hidden(tmp_path)) == 1
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 143 and "terminated" in err and "Traceback" not in err
    assert not os.path.exists(folder) and hidden(tmp_path) == [] and not target.exists()


# -- up-front validation ---------------------------------------------------------------------------
def test_input_sides_have_a_sane_upper_bound():
    with pytest.raises(ConfigError, match="larger than the 4096"):
        get_config("d0", input_size=1280000)
    with pytest.raises(ConfigError, match="larger than the 4096"):
        get_config("d0", input_size="128x128000")
    assert get_config("d0", input_size="384x640").input_size == (384, 640)


@pytest.mark.parametrize("edit, words", [
    (lambda d: d.update(annotations=[1, 2, 3]), "annotations[0] is 1"),
    (lambda d: d["images"][0].update(width="wide"), "'width' 'wide'"),
    (lambda d: d["annotations"][0].update(image_id=[1]), "integer 'image_id'"),
    (lambda d: d["annotations"][0].update(bbox="x"), "bbox 'x'"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2]), "bbox [1, 2]"),
    (lambda d: d["annotations"][0].update(bbox=[1, 2, float("nan"), 3]), "bbox"),
])
def test_coco_json_with_wrong_types_is_refused_in_one_sentence(tmp_path, edit, words):
    from edge_edet.eval.coco import read_coco_json

    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}],
            "categories": [{"id": 1, "name": "person"}]}
    edit(data)
    path = tmp_path / "ann.json"
    path.write_text(json.dumps(data))
    with pytest.raises(EdgeEdetError, match="annotations file") as info:
        read_coco_json(str(path))
    assert words in str(info.value)


def test_training_set_without_a_usable_box_is_refused(tmp_path):
    import cv2

    from edge_edet.train.dataset import read_coco

    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((10, 10, 3), np.uint8))
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 10, "height": 10}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 1, 0, 5]}],
            "categories": [{"id": 1, "name": "person"}]}
    (tmp_path / "ann.json").write_text(json.dumps(data))
    with pytest.raises(EdgeEdetError, match="no usable box"):
        read_coco(str(tmp_path / "ann.json"), str(tmp_path), ["person"], need_boxes=True)


@pytest.mark.parametrize("lr", [float("nan"), -1.0, 0.0, float("inf")])
def test_train_learning_rate_must_be_finite_and_positive(tmp_path, lr):
    from edge_edet.train.trainer import Trainer, TrainOptions

    options = TrainOptions(model="lite0", train_images=str(tmp_path), train_annotations="x.json",
                           val_images=str(tmp_path), val_annotations="x.json", output=str(tmp_path / "run"), lr=lr)
    with pytest.raises(EdgeEdetError, match="--lr must be a finite positive number"):
        Trainer(options)
    assert not (tmp_path / "run").exists()


def test_train_refusal_is_one_sentence_and_leaves_no_run_folder(tmp_path):
    rc, _, err = cli(["train", "--model", "lite0", "--train-images", str(tmp_path), "--train-annotations", "x.json",
                      "--val-images", str(tmp_path), "--val-annotations", "x.json", "--output",
                      str(tmp_path / "run"), "--lr", "nan"], cwd=str(tmp_path))
    assert_one_sentence(rc, err, "--lr")
    assert not (tmp_path / "run").exists()  # a failed start leaves no run folder


def test_worker_traceback_is_reduced_to_its_sentence():
    from edge_edet.contract.cli import one_sentence

    text = ("Caught DatasetError in DataLoader worker process 0.\nOriginal Traceback (most recent call last):\n"
            "  File \"x.py\", line 1, in f\nedge_edet.train.dataset.DatasetError: image a.jpg cannot be read\n")
    assert one_sentence(text) == "image a.jpg cannot be read"
    assert one_sentence("plain: sentence") == "plain: sentence"


# -- the ONNX Runtime back-end checks the graph against its metadata -------------------------------
def test_graph_that_disagrees_with_its_metadata_is_refused(deploy_lite0, tmp_path):
    import onnx

    from edge_edet.contract.metadata import deploy_info_from_onnx_model, write_onnx_metadata
    from edge_edet.runtime import Detector

    model = onnx.load(deploy_lite0)
    info = deploy_info_from_onnx_model(model)
    info.input_size = [384, 384]
    write_onnx_metadata(model, info)
    path = str(tmp_path / "wrong_size.onnx")
    onnx.save(model, path)
    with pytest.raises(EdgeEdetError, match=r"has shape \[1, 256, 256, 3\], but its metadata says"):
        Detector.from_file(path)
    model = onnx.load(deploy_lite0)
    model.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    path = str(tmp_path / "float_input.onnx")
    onnx.save(model, path)
    with pytest.raises(EdgeEdetError, match=r"is tensor\(float\), but an edge_edet graph takes uint8"):
        Detector.from_file(path)
    model = onnx.load(deploy_lite0)
    kept = [o for o in model.graph.output if o.name != "detection_classes"]
    del model.graph.output[:]
    model.graph.output.extend(kept)
    path = str(tmp_path / "three_outputs.onnx")
    onnx.save(model, path)
    with pytest.raises(EdgeEdetError, match="lacks the output.s. detection_classes of an edge_edet graph"):
        Detector.from_file(path)


# -- run: outputs ----------------------------------------------------------------------------------
def test_run_refuses_outputs_that_clobber_before_loading_anything(tmp_path):
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"not really a video")
    model = str(tmp_path / "missing.onnx")  # never loaded: the output check comes first
    for args, words in (
            (["--output", str(clip)], ("is the input given as --source",)),
            (["--output", str(tmp_path / "x.mp4"), "--json", str(tmp_path / "x.mp4")], ("same file",)),
            (["--json", str(tmp_path / "a.jsonl"), "--summary-json", str(tmp_path / "a.jsonl")], ("same file",)),
            (["--json", "/dev/null"], ("device",)),
            (["--json", str(tmp_path)], ("is a folder",))):
        rc, _, err = cli(["run", "--engine", model, "--source", str(clip), "--headless"] + args, cwd=str(tmp_path))
        assert_one_sentence(rc, err, *words)
    assert clip.read_bytes() == b"not really a video"


def test_failed_run_leaves_an_existing_json_as_it_was(deploy_lite0, tmp_path):
    frames = tmp_path / "frames"
    frames.mkdir()
    (frames / "broken.jpg").write_bytes(b"")
    old = tmp_path / "a.jsonl"
    old.write_text(OLD_LINES)
    rc, _, err = cli(["run", "--engine", deploy_lite0, "--source", str(frames), "--headless", "--json", str(old)],
                     cwd=str(tmp_path))
    assert_one_sentence(rc, err, "gave no frames")
    assert old.read_text() == OLD_LINES and hidden(tmp_path) == []


@pytest.mark.parametrize("flag, name", [("--json", "a.jsonl"),
                                        pytest.param("--output", "a.mp4", marks=pytest.mark.slow)])
def test_run_on_a_full_disk_fails_in_one_sentence_and_keeps_the_old_file(deploy_lite0, tmp_path, flag, name):
    video = shared_path("data", "video", "cars_short.mp4")
    old = tmp_path / name
    old.write_bytes(OLD_LINES.encode() * 4)
    before = old.read_bytes()
    rc, _, err = cli(["run", "--engine", deploy_lite0, "--source", video, "--headless", "--max-frames", "40",
                      flag, str(old)], cwd=str(tmp_path), limit=3000)
    assert_one_sentence(rc, err, str(old), "left as it was")
    assert old.read_bytes() == before and hidden(tmp_path) == []
    assert "Failed to write frame" not in err and "moov atom" not in err  # FFmpeg/OpenCV noise hidden


def _tmpfs_shell(folder, size, command):
    """`command` in a private mount namespace with a `size` tmpfs on `folder` (a real full disk)."""
    import shlex
    import shutil

    if not shutil.which("unshare"):
        pytest.skip("unshare is not installed: the file-size-limit tests stand for a full disk")
    probe = subprocess.run(["unshare", "-rm", "mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({probe.stderr.strip()}); the file-size-limit tests stand for it")
    script = f"mount -t tmpfs -o size={size} tmpfs {shlex.quote(str(folder))} && {command}"
    env = dict(os.environ, PYTHONPATH=REPO)
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.mark.slow
def test_video_on_a_really_full_disk_keeps_the_frames_so_far_playable(deploy_lite0, tmp_path):
    """A 2 MiB tmpfs: the sink sees the disk fill, finishes the video while its index still fits and
    says how many frames it kept; the file plays back with exactly that many."""
    import re
    import shlex

    video = shared_path("data", "video", "cars_short.mp4")
    disk = tmp_path / "disk"
    disk.mkdir()
    out = disk / "a.mp4"
    check = (f"import cv2; c = cv2.VideoCapture({str(out)!r}); n = 0\n"
             "while c.read()[0]: n += 1\n"
             "print('readable', n)")
    command = (f"{shlex.quote(sys.executable)} -m edge_edet run --engine {shlex.quote(deploy_lite0)} "
               f"--source {shlex.quote(video)} --headless --output {shlex.quote(str(out))}; echo rc=$?; "
               f"{shlex.quote(sys.executable)} -c {shlex.quote(check)}; ls -a {shlex.quote(str(disk))}")
    proc = _tmpfs_shell(disk, "2m", command)
    assert "rc=2" in proc.stdout and "Traceback" not in proc.stderr, proc.stderr
    kept = int(re.search(r"the (\d+) frames written so far are kept, playable", proc.stderr).group(1))
    assert 0 < kept < 151
    assert f"readable {kept}" in proc.stdout
    assert ".a." not in proc.stdout  # no hidden partial left on the disk


def test_json_lines_stream_to_standard_output(deploy_lite0, tmp_path):
    video = shared_path("data", "video", "cars_short.mp4")
    rc, out, err = cli(["run", "--engine", deploy_lite0, "--source", video, "--headless", "--max-frames", "3",
                        "--json", "-"], cwd=str(tmp_path))
    assert rc == 0, err
    records = [json.loads(line) for line in out.splitlines()]  # stdout holds the lines, nothing else
    assert [r["frame"] for r in records] == [0, 1, 2]
    assert "frames 3" in err  # the summary moved to stderr


# -- the MJPEG preview: limits -----------------------------------------------------------------------
def _connect(server):
    sock = socket.create_connection((server.host, server.port), timeout=5)
    return sock


def _read_all(sock):
    chunks = []
    while True:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return b"".join(chunks), False
        if not data:
            return b"".join(chunks), True
        chunks.append(data)


def test_mjpeg_caps_clients_times_out_idle_ones_and_closes_http09():
    from edge_edet.runtime.mjpeg import LISTEN_BACKLOG, MjpegServer

    server = MjpegServer("127.0.0.1", 0)
    try:
        assert LISTEN_BACKLOG >= 32 and server.server.request_queue_size == LISTEN_BACKLOG
        server.server.max_clients = 2
        server.server.RequestHandlerClass.timeout = 0.5
        idle = [_connect(server) for _ in range(2)]  # two idle clients hold both places
        time.sleep(0.2)
        third = _connect(server)
        body, closed = _read_all(third)
        assert body.startswith(b"HTTP/1.0 503") and closed
        for sock in idle:  # the idle timeout lets them go, without an answer
            body, closed = _read_all(sock)
            assert closed
            sock.close()
        time.sleep(0.2)
        http09 = _connect(server)
        http09.sendall(b"GET /\r\n")
        body, closed = _read_all(http09)
        assert closed and body == b""
        fine = _connect(server)
        fine.sendall(b"GET / HTTP/1.0\r\n\r\n")
        body, _ = _read_all(fine)
        assert body.startswith(b"HTTP/1.0 200")
        fine.close()
        deadline = time.monotonic() + 5
        while server.server.active and time.monotonic() < deadline:  # the handler threads end just after
            time.sleep(0.01)
        assert server.server.active == 0  # every connection gave its place back, the refused one too
    finally:
        server.close()


def test_mjpeg_limits_the_whole_request_not_each_read(monkeypatch):
    """Clients trickling one header line at a time, each within the per-read timeout, lose their place
    when the request as a whole takes too long; a real viewer then gets the frame."""
    from edge_edet.runtime import mjpeg

    monkeypatch.setattr(mjpeg, "REQUEST_TIMEOUT_S", 0.8)
    server = mjpeg.MjpegServer("127.0.0.1", 0)
    try:
        server.server.max_clients = 3
        server.publish(np.zeros((8, 8, 3), np.uint8))
        slow = [_connect(server) for _ in range(3)]
        started = time.monotonic()
        for sock in slow:
            sock.sendall(b"GET /frame.jpg HTTP/1.1\r\n")
        while time.monotonic() - started < 2.0:  # a header line every 0.3 s: never idle for a whole read timeout
            time.sleep(0.3)
            for sock in slow:
                try:
                    sock.sendall(b"X-Slow: 1\r\n")
                except OSError:
                    pass
        for sock in slow:
            body, closed = _read_all(sock)
            assert closed and body == b""  # cut without an answer
            sock.close()
        viewer = _connect(server)
        viewer.sendall(b"GET /frame.jpg HTTP/1.0\r\n\r\n")
        body, _ = _read_all(viewer)
        viewer.close()
        assert body.startswith(b"HTTP/1.0 200") and b"image/jpeg" in body
    finally:
        server.close()


def test_mjpeg_viewer_leaving_mid_answer_is_silent(capfd):
    """A viewer that closes right after GET /frame.jpg (a reset, mid-answer) costs no traceback."""
    import struct

    from edge_edet.runtime.mjpeg import MjpegServer

    server = MjpegServer("127.0.0.1", 0)
    try:
        server.publish(np.random.default_rng(0).integers(0, 255, (720, 1280, 3), dtype=np.uint8))  # a large JPEG
        for _ in range(5):
            sock = _connect(server)
            sock.sendall(b"GET /frame.jpg HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close with a reset
            sock.close()
        deadline = time.monotonic() + 5
        while server.server.active and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.server.active == 0
        viewer = _connect(server)
        viewer.sendall(b"GET /frame.jpg HTTP/1.0\r\n\r\n")
        assert _read_all(viewer)[0].startswith(b"HTTP/1.0 200")  # still serving
        viewer.close()
    finally:
        server.close()
    err = capfd.readouterr().err
    assert "Traceback" not in err and "BrokenPipe" not in err and "ConnectionReset" not in err


def test_mjpeg_serves_ipv6_loopback():
    from edge_edet.runtime.mjpeg import MjpegServer, parse_serve

    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    try:
        server = MjpegServer(*parse_serve("[::1]:0"))
    except EdgeEdetError as exc:
        pytest.skip(f"IPv6 loopback unavailable: {exc}")
    try:
        assert server.url.startswith("http://[::1]:")
    finally:
        server.close()


def _frame(index, image):
    from edge_edet.runtime.sources import Frame

    return Frame(index=index, image=image, timestamp=index / 30.0)


def test_video_sink_finishes_a_playable_video_when_the_disk_fills(tmp_path, monkeypatch):
    """In process, no mount: statvfs reports an almost full disk after the first check."""
    import cv2

    from edge_edet.runtime import sinks
    from edge_edet.runtime.detections import Detections

    out = tmp_path / "a.mp4"
    sink = sinks.VideoFileSink(str(out), fps=30)
    real = os.statvfs

    class Full:
        f_bavail, f_frsize = 10, 4096

    image = np.zeros((64, 96, 3), np.uint8)
    none = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), [])
    for i in range(sinks.SPACE_CHECK_EVERY - 1):
        sink.write(_frame(i, image), none, image)
    monkeypatch.setattr(sinks.os, "statvfs", lambda path: Full())
    with pytest.raises(EdgeEdetError, match=r"the disk is full \(40 KiB left\).*the 30 frames written so far are kept"):
        sink.write(_frame(29, image), none, image)
    monkeypatch.setattr(sinks.os, "statvfs", real)
    sink.close()  # the pipeline still closes it: nothing more to do
    reader = cv2.VideoCapture(str(out))
    count = 0
    while reader.read()[0]:
        count += 1
    assert count == 30 and hidden(tmp_path) == []


def test_json_lines_go_into_a_fifo_line_by_line(tmp_path):
    import threading

    from edge_edet.runtime.detections import Detections
    from edge_edet.runtime.sinks import JsonLinesSink

    fifo = tmp_path / "dets"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.extend(open(fifo).read().splitlines()))
    reader.start()
    sink = JsonLinesSink(str(fifo), "--json")
    image = np.zeros((8, 8, 3), np.uint8)
    none = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), [])
    for i in range(3):
        sink.write(_frame(i, image), none, None)
    sink.close()
    reader.join(timeout=10)
    assert [json.loads(line)["frame"] for line in received] == [0, 1, 2]
    assert os.path.exists(fifo) and not os.path.isfile(fifo)  # still the FIFO, never replaced


# == issue 22: nothing lost, round two ===================================================================
def _dead_pid():
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


# -- a model name is one folder name Triton accepts, and an input is never inside what is replaced -------
@pytest.mark.parametrize("name", ["..", ".", "a/b", "../up", ".hidden", "x" * 256, "", "a b"])
def test_a_model_name_is_one_folder_name_triton_accepts(name):
    from edge_edet.runtime.backends.triton_backend import parse_triton_uri
    from edge_edet.serve.server import model_name

    with pytest.raises(EdgeEdetError, match="not a Triton model name"):
        model_name("model.onnx", name)
    with pytest.raises(EdgeEdetError, match="is not a Triton address"):
        parse_triton_uri(f"triton://127.0.0.1:8001/{name}")


def test_good_model_names_pass():
    from edge_edet.serve.server import model_name

    assert model_name("dir/person.onnx", None) == "person"
    assert model_name("x.onnx", "person_v2.1-b") == "person_v2.1-b"
    with pytest.raises(EdgeEdetError, match="pass --name"):  # the file's stem is checked too
        model_name("dir/.hidden.onnx", None)


def _repo_inputs(tmp_path, deploy_lite0):
    pytest.importorskip("tritonclient.grpc.model_config_pb2", reason="triton-repo needs tritonclient")
    import shutil

    model = tmp_path / "repo" / "m" / "my.onnx"
    model.parent.mkdir(parents=True)
    shutil.copy(deploy_lite0, model)
    return model


def test_triton_repo_never_deletes_its_input_nor_writes_above_the_repo(tmp_path, deploy_lite0):
    from edge_edet.serve.repository import write_repository

    model = _repo_inputs(tmp_path, deploy_lite0)
    before = model.read_bytes()
    with pytest.raises(EdgeEdetError, match="lies inside"):
        write_repository(str(model), str(tmp_path / "repo"), name="m", force=True)
    link = tmp_path / "elsewhere"
    link.symlink_to(tmp_path / "repo" / "m")  # the same folder through a link: real paths compare
    with pytest.raises(EdgeEdetError, match="lies inside"):
        write_repository(str(link / "my.onnx"), str(tmp_path / "repo"), name="m", force=True)
    for name in ("..", "."):
        with pytest.raises(EdgeEdetError, match="not a Triton model name"):
            write_repository(str(model), str(tmp_path / "repo"), name=name, force=True)
    assert model.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["elsewhere", "repo"] and os.listdir(tmp_path / "repo") == ["m"]


def test_triton_repo_replacement_and_failures_leave_nothing_hidden(tmp_path, deploy_lite0, monkeypatch):
    from edge_edet.serve import repository

    model = _repo_inputs(tmp_path, deploy_lite0)
    repo = tmp_path / "repo"
    stale = tmp_path / f".edge_edet-{_dead_pid()}-repo-abc.tmp"  # a killed triton-repo's staging folder
    (stale / "m").mkdir(parents=True)
    repository.write_repository(str(model), str(repo), name="m2", force=True)
    repository.write_repository(str(model), str(repo), name="m2", force=True)  # replaced in place
    assert not stale.exists() and hidden(tmp_path) == [] and hidden(repo) == [] and hidden(repo / "m2") == []
    assert sorted(os.listdir(repo / "m2")) == ["1", "config.pbtxt", "labels.txt"]

    def full_disk(*args, **kwargs):
        raise OSError(27, "File too large")

    monkeypatch.setattr(repository.shutil, "copyfile", full_disk)
    config = (repo / "m2" / "config.pbtxt").read_bytes()
    with pytest.raises(EdgeEdetError, match=r"File too large\); .*repo was left as it was"):
        repository.write_repository(str(model), str(repo), name="m2", force=True)
    with pytest.raises(EdgeEdetError, match="new was not created"):
        repository.write_repository(str(model), str(tmp_path / "new"), name="m")
    assert (repo / "m2" / "config.pbtxt").read_bytes() == config
    assert hidden(tmp_path) == [] and hidden(repo) == [] and not (tmp_path / "new").exists()


# -- a finished output that cannot be put in place: one sentence, partial removed -----------------------
def test_check_output_refuses_a_target_that_cannot_be_replaced(tmp_path, monkeypatch):
    from edge_edet.contract import fileio

    target = tmp_path / "old.jsonl"
    target.write_text(OLD_LINES)
    real_open = os.open

    def immutable(path, flags, *args):
        if os.path.abspath(path) == str(target) and flags & os.O_WRONLY:
            raise PermissionError(1, "Operation not permitted")  # what chattr +i gives, even to root
        return real_open(path, flags, *args)

    monkeypatch.setattr(fileio.os, "open", immutable)
    with pytest.raises(EdgeEdetError, match="cannot be replaced: it is marked immutable"):
        check_output_file(str(target), "--json")
    monkeypatch.setattr(fileio.os, "open", real_open)
    os.chmod(tmp_path, 0o1777)  # a sticky folder (as /tmp) that is not ours, holding another user's file
    monkeypatch.setattr(fileio.os, "geteuid", lambda: 4242)
    with pytest.raises(EdgeEdetError, match="belongs to another user in the sticky folder"):
        check_output_file(str(target), "--json")
    assert target.read_text() == OLD_LINES


@pytest.mark.parametrize("kind", ["json", "video"])
def test_a_refused_rename_at_the_end_is_one_sentence_and_removes_the_partial(tmp_path, monkeypatch, kind):
    from edge_edet.contract import fileio
    from edge_edet.runtime.detections import Detections
    from edge_edet.runtime.sinks import JsonLinesSink, VideoFileSink

    target = tmp_path / ("old.jsonl" if kind == "json" else "old.avi")
    target.write_bytes(b"old output\n")
    sink = JsonLinesSink(str(target)) if kind == "json" else VideoFileSink(str(target), fps=10)
    image = np.zeros((32, 48, 3), np.uint8)
    none = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), [])
    for i in range(3):
        sink.write(_frame(i, image), none, image)

    def refused(src, dst):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(fileio.os, "replace", refused)
    with pytest.raises(EdgeEdetError, match=r"could not be put in place \(Operation not permitted\); the partial "
                                            r"file was removed and .* was left as it was"):
        sink.close()
    assert target.read_bytes() == b"old output\n" and hidden(tmp_path) == []


def test_stdout_closed_is_refused_before_anything_runs(monkeypatch):
    monkeypatch.setattr(sys, "stdout", None)  # what Python makes of `>&-`
    with pytest.raises(EdgeEdetError, match="standard output is closed"):
        check_output_file("-", "--json", stream_ok=True)


# -- full disks: scratch files, checkpoints -------------------------------------------------------------
def test_a_full_disk_in_a_scratch_folder_is_one_sentence_and_the_folder_goes(tmp_path, monkeypatch):
    import tempfile

    from edge_edet.contract.fileio import work_folder

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(EdgeEdetError, match=r"scratch files in .* could not be written \(File too large\)"):
        with work_folder("calib") as scratch:
            raise OSError(27, "File too large")
    assert not os.path.exists(scratch) and os.listdir(tmp_path) == []


def test_torch_save_failing_on_a_full_disk_is_one_sentence(tmp_path, monkeypatch):
    import torch

    from edge_edet.train import checkpoint

    target = tmp_path / "last.pth"
    target.write_bytes(b"epoch 1")

    def unexpected_pos(obj, path):
        open(path, "wb").write(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 2048 vs 1993")

    monkeypatch.setattr(torch, "save", unexpected_pos)
    with pytest.raises(EdgeEdetError, match=r"writing .*last.pth failed: .*full disk.*left as it was"):
        checkpoint.save_atomic({"x": 1}, str(target))
    assert target.read_bytes() == b"epoch 1" and hidden(tmp_path) == []


def test_atomic_writers_sweep_what_a_killed_writer_left_beside_them(tmp_path):
    stale = tmp_path / f".edge_edet-{_dead_pid()}-abc123.pth.tmp"  # train killed with -9 mid-checkpoint
    stale.write_bytes(b"half a checkpoint")
    write_text_atomic(str(tmp_path / "labels.txt"), "person\n")
    assert not stale.exists() and os.listdir(tmp_path) == ["labels.txt"]


def test_serve_log_folders_of_dead_servers_are_swept(tmp_path):
    dead = tmp_path / f"edge_edet_triton_{_dead_pid()}_abc"
    live = tmp_path / f"edge_edet_triton_{os.getpid()}_abc"
    for folder in (dead, live):
        folder.mkdir()
        (folder / "triton.log").write_text("log")
    assert remove_stale_work_folders(str(tmp_path)) == [dead.name] and live.exists()
    source = open(os.path.join(REPO, "edge_edet", "serve", "server.py")).read()
    assert 'prefix=f"edge_edet_triton_{os.getpid()}_"' in source  # the name the sweep recognises


# -- counts bounded by the machine, arguments checked before any work -----------------------------------
def test_counts_are_bounded_by_the_cpus_and_memory_here(monkeypatch):
    import argparse

    from edge_edet.contract import cli, machine

    monkeypatch.setattr(machine, "usable_cpus", lambda: 4)
    assert cli.thread_count("4") == 4 and cli.worker_count("0") == 0
    for parse, text in ((cli.thread_count, "100000"), (cli.worker_count, "5"), (cli.thread_count, "0")):
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)
    monkeypatch.setattr(machine, "available_memory_bytes", lambda: 2 ** 30)
    machine.check_count_fits_memory("--batch", 8, 2 ** 20, "images")
    with pytest.raises(EdgeEdetError, match=r"--batch 100000 needs at least 97.7 GB .* the 1.0 GB of memory free "
                                            r"here; use at most 1024"):
        machine.check_count_fits_memory("--batch", 100000, 2 ** 20, "images")


@pytest.mark.parametrize("argv, words", [
    (["run", "--threads", "100000", "--source", "x.mp4"], "CPU core"),
    (["train", "--model", "lite0", "--train-images", "i", "--train-annotations", "a", "--val-images", "i",
      "--val-annotations", "a", "--output", "o", "--max-minutes", "-1"], "argument --max-minutes"),
    (["train", "--model", "lite0", "--train-images", "i", "--train-annotations", "a", "--val-images", "i",
      "--val-annotations", "a", "--output", "o", "--workers", "100000"], "CPU core"),
    (["export", "--model", "lite0", "--output", "e.onnx", "--opset", "5"], "must be 13 to 17"),
    (["export", "--model", "lite0", "--output", "e.onnx", "--opset", "99"], "must be 13 to 17"),
    (["serve", "--engine", "m.onnx", "--instances", "100000"], "CPU core"),
])
def test_typed_counts_and_ranges_are_refused_by_the_parser(argv, words, capsys):
    from edge_edet.cli import main

    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err
    assert exit_info.value.code == 2 and words in err and "Traceback" not in err


def test_export_refuses_a_non_onnx_output_and_bad_numbers_before_building(tmp_path, capsys):
    from edge_edet.cli import main

    for extra, words in ((["--output", str(tmp_path / "e.txt")], "must end in .onnx"),
                         (["--output", str(tmp_path / "e.onnx"), "--pre-nms-top-k", "5", "--max-detections", "10"],
                          "is below --max-detections"),
                         (["--output", str(tmp_path / "e.onnx"), "--batch", "100000000"], "memory")):
        assert main(["export", "--model", "lite0"] + extra) == 2
        assert words in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
    assert "13 to 17" in _help(["export", "--help"], capsys)


def _help(argv, capsys):
    from edge_edet.cli import main

    with pytest.raises(SystemExit):
        main(argv)
    return " ".join(capsys.readouterr().out.split())


# -- clear messages ----------------------------------------------------------------------------------------
def test_sources_and_outputs_that_are_not_files_say_what_they_are(tmp_path):
    from edge_edet.contract.source_uri import parse_source
    from edge_edet.runtime.sinks import sink_kind

    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(EdgeEdetError, match="is a device"):
        parse_source("/dev/zero")
    with pytest.raises(EdgeEdetError, match=r"is a FIFO \(named pipe\)"):
        parse_source(str(fifo))
    with pytest.raises(EdgeEdetError, match="ftp:// is not a scheme"):
        parse_source("ftp://host/x.mp4")
    with pytest.raises(EdgeEdetError, match="ftp:// is not an output"):
        sink_kind("ftp://host/x.mp4")
    with pytest.raises(EdgeEdetError, match=r"network address \(ftp://\)"):
        check_output_file("ftp://host/x.jsonl", "--json")


def test_coco_ids_must_be_unique(tmp_path):
    from edge_edet.eval.coco import coco_entry_problem

    image = {"id": 1, "file_name": "a.jpg"}
    ann = {"id": 7, "image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]}
    good = {"images": [image, dict(image, id=2)], "annotations": [ann, dict(ann, id=8)],
            "categories": [{"id": 1, "name": "person"}]}
    assert coco_entry_problem(good) is None
    assert "images[1] and images[0] share the id 1" in coco_entry_problem(dict(good, images=[image, image]))
    assert "share the id 7" in coco_entry_problem(dict(good, annotations=[ann, ann]))
    assert "share the id 1" in coco_entry_problem(dict(good, categories=good["categories"] * 2))


def test_a_box_at_1e308_is_dropped_without_a_numpy_warning(tmp_path):
    import warnings

    import cv2

    from edge_edet.train.dataset import read_coco

    cv2.imwrite(str(tmp_path / "a.jpg"), np.zeros((64, 64, 3), np.uint8))
    data = {"images": [{"id": 1, "file_name": "a.jpg", "width": 64, "height": 64}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1e308, 5, 1e308, 30]},
                            {"id": 2, "image_id": 1, "category_id": 1, "bbox": [5, 5, 1e308, 30]}],
            "categories": [{"id": 1, "name": "person"}]}
    (tmp_path / "a.json").write_text(json.dumps(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        records, report = read_coco(str(tmp_path / "a.json"), str(tmp_path), ["person"])
    assert report.counts["outside_boxes"] == 1 and report.counts["clipped_boxes"] == 1
    assert records[0].boxes.tolist() == [[5.0, 5.0, 64.0, 35.0]]


def test_metadata_without_labels_is_refused():
    from edge_edet.contract.metadata import DeployInfo, MetadataError

    base = {"model": "lite0", "input_size": [320, 320], "mean": [1, 2, 3], "std": [1, 2, 3]}
    for labels in ([], "person"):
        with pytest.raises(MetadataError, match="unusable edge_edet metadata: its label list is empty"):
            DeployInfo.from_dict(dict(base, labels=labels), "m.onnx")
    with pytest.raises(MetadataError, match="input size"):
        DeployInfo.from_dict(dict(base, labels=["person"], input_size=[0, 320]), "m.onnx")
    assert DeployInfo.from_dict(dict(base, labels=["person"])).labels == ["person"]


@pytest.mark.parametrize("text, ok", [("0,0,100,0,200,0", False), ("5,5,5,5,5,5", False),
                                      ("0.1,0.1,0.2,0.2,0.3,0.3,desk", False), ("0,0,1,1,1,0,0,1", True),
                                      ("0,0,10,0,10,10", True)])
def test_a_zone_needs_an_area(text, ok):
    from edge_edet.runtime.analytics.geometry import parse_zone

    if ok:
        assert parse_zone(text).flag == "--zone"
    else:
        with pytest.raises(EdgeEdetError, match="the zone has no area"):
            parse_zone(text)


def test_a_video_that_cannot_hold_the_frame_says_why_and_the_json_is_still_written(deploy_lite0, tmp_path):
    import cv2

    cv2.imwrite(str(tmp_path / "dot.png"), np.full((1, 1, 3), 90, np.uint8))
    rc, out, err = cli(["run", "--engine", deploy_lite0, "--source", "dot.png", "--headless", "--output", "out.mp4",
                        "--json", "out.jsonl"], cwd=str(tmp_path))
    assert_one_sentence(rc, err, "mp4v video cannot hold 1x1 frames", "use .avi")
    assert [json.loads(line)["width"] for line in (tmp_path / "out.jsonl").read_text().splitlines()] == [1]
    assert not (tmp_path / "out.mp4").exists() and hidden(tmp_path) == []


# -- streams whose reader stalls or is missing ------------------------------------------------------------
def test_a_stalled_stream_reader_holds_a_stop_only_for_the_grace_time(tmp_path, monkeypatch, capsys):
    import fcntl
    import threading

    from edge_edet.runtime import sinks
    from edge_edet.runtime.detections import Detections

    monkeypatch.setattr(sinks, "STREAM_GRACE_S", 0.3)
    fifo = tmp_path / "dets"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # opened, never read
    try:
        sink = sinks.JsonLinesSink(str(fifo), "--json")
        fcntl.fcntl(reader, 1031, 4096)  # F_SETPIPE_SZ: a one-page pipe fills after a few lines
        image = np.zeros((8, 8, 3), np.uint8)
        none = Detections(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32), [])
        done = threading.Event()

        def stream():
            for i in range(200):
                sink.write(_frame(i, image), none, None)
            done.set()

        writer = threading.Thread(target=stream, daemon=True)
        writer.start()
        assert not done.wait(1.0)  # blocked on the full pipe: a slow reader slows the stream
        sink.stop_soon()  # what the pipeline does on SIGTERM
        assert done.wait(3.0)  # then the rest is given up within the grace time
        sink.close()
        assert 0 < sink.frames < 200 and sink.dropped == 200 - sink.frames
        assert "stopped reading" in capsys.readouterr().err
    finally:
        os.close(reader)


def test_a_fifo_without_a_reader_says_it_waits(tmp_path, capsys):
    import threading

    from edge_edet.runtime.sinks import JsonLinesSink

    fifo = tmp_path / "dets"
    os.mkfifo(fifo)
    opened = []
    thread = threading.Thread(target=lambda: opened.append(JsonLinesSink(str(fifo), "--json")), daemon=True)
    thread.start()
    time.sleep(0.5)
    assert not opened and "waiting for a reader to open the FIFO" in capsys.readouterr().err
    reader = os.open(fifo, os.O_RDONLY)
    try:
        thread.join(timeout=5)
        assert opened
        opened[0].close()
    finally:
        os.close(reader)
