"""MJPEG preview over HTTP for headless boards, on the standard library server.

    server = MjpegServer("127.0.0.1", 8080)    # binds now: a busy port fails before the stream
    server.publish(frame_bgr)                   # latest frame; encoded only when someone watches
    server.close()

Pages: `/` (a page showing the stream), `/stream.mjpg` (multipart/x-mixed-replace), `/frame.jpg`
(the latest frame), `/counts` (JSON, with --track: cumulative line counts, zone occupancy and
dwell; with several sources a list of them, per source).  With several sources (`MjpegServer(..., sources=names)`,
`publish(frame, source=N)`) `/stream/N.mjpg`, `/frame/N.jpg` and `/counts/N` are source N's, and
`/stream.mjpg` / `/frame.jpg` show every source tiled (mosaic.py); with one source the tiled view
is its frame.  Loopback by default; each frame is JPEG-encoded once however many clients watch,
and not at all when none does (the tiles too), so the preview costs the pipeline nothing when unused.
Limits, so a crowd or a stuck client cannot hurt the stream: a listen backlog of LISTEN_BACKLOG
(tens of viewers connect at once without waiting), at most MAX_CLIENTS connections at a time (the
next gets 503 and is closed at once), REQUEST_TIMEOUT_S for a client's whole request (a client
trickling header lines cannot keep its slot), IDLE_TIMEOUT_S to accept a frame, and HTTP/0.9
requests (no version, no headers) closed unanswered.  A viewer that goes away mid-answer is
nothing to report: it ends its connection silently, never with a traceback.
"""
from __future__ import annotations

import errno
import json
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import List, Optional, Sequence, Tuple

import cv2
import numpy as np

from ..contract.errors import EdgeEdetError
from .mosaic import Mosaic

BOUNDARY = "edgeedetframe"
LISTEN_BACKLOG = 128
MAX_CLIENTS = 32
IDLE_TIMEOUT_S = 10.0  # per read or frame sent
REQUEST_TIMEOUT_S = 10.0  # from connecting to the end of the request's headers, however it trickles in
CLIENT_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError, socket.timeout)
_BUSY_BODY = b"too many viewers; try again shortly\n"
BUSY_RESPONSE = (b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\nRetry-After: 5\r\n"
                 b"Connection: close\r\nContent-Length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY)
LOOPBACK = ("127.0.0.1", "localhost", "::1")
PAGE = (b"<!doctype html><html><head><title>edge-edet</title></head>"
        b"<body style='margin:0;background:#111'><img src='/stream.mjpg' style='max-width:100%'></body></html>")
PER_SOURCE = re.compile(r"^/(stream|frame|counts)/(\d+)(\.mjpg|\.jpg)?$")  # /stream/N.mjpg, /frame/N.jpg, /counts/N


def parse_serve(value: str) -> Tuple[str, int]:
    """'8080' -> ('127.0.0.1', 8080); 'HOST:PORT' as given ('0.0.0.0:8080' exposes it to the network)."""
    text = str(value).strip()
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "127.0.0.1", text
    host = host.strip("[]") or "127.0.0.1"
    try:
        number = int(port)
    except ValueError:
        raise EdgeEdetError(f"--serve {value}: expected PORT or HOST:PORT, e.g. 127.0.0.1:8080") from None
    if not 0 <= number <= 65535:
        raise EdgeEdetError(f"--serve {value}: port {number} is outside 0-65535")
    return host, number


class _FrameBoard:
    """The latest frame, a sequence number, and its JPEG once someone has asked for it."""

    def __init__(self, quality: int, cond: Optional[threading.Condition] = None):
        self.quality = int(quality)
        self.cond = cond or threading.Condition()  # shared by a server's boards: the mosaic waits on all
        self.frame: Optional[np.ndarray] = None
        self.seq = 0
        self.closed = False
        self._jpeg: Optional[bytes] = None
        self._jpeg_seq = -1
        self.frames_sent = 0  # stream parts written, all clients together
        self.counts: Optional[dict] = None  # the latest frame's counts (tracking on)

    def publish(self, frame: np.ndarray, counts: Optional[dict] = None) -> None:
        with self.cond:
            self.frame = frame
            self.seq += 1
            if counts is not None:
                self.counts = counts
            self.cond.notify_all()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()

    def wait_newer(self, seq: int, timeout: float = 1.0) -> int:
        with self.cond:
            self.cond.wait_for(lambda: self.closed or self.seq > seq, timeout=timeout)
            return self.seq

    def jpeg(self) -> Tuple[int, Optional[bytes]]:
        with self.cond:
            frame, seq = self.frame, self.seq
            if frame is None:
                return seq, None
            if self._jpeg_seq == seq:
                return seq, self._jpeg
        ok, data = cv2.imencode(".jpg", frame, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
        payload = data.tobytes() if ok else None
        with self.cond:
            if seq >= self._jpeg_seq:
                self._jpeg, self._jpeg_seq = payload, seq
        return seq, payload


class _MosaicBoard(_FrameBoard):
    """Every source's board tiled: its frame is composed from theirs when a viewer asks for it."""

    def __init__(self, quality: int, boards: List[_FrameBoard], names: Sequence[str]):
        super().__init__(quality, boards[0].cond)
        self.boards = boards
        self.mosaic = Mosaic(names)
        self._placed = [0] * len(boards)  # the seq of each board already in the mosaic
        self._compose = threading.Lock()

    def publish(self, frame: np.ndarray, counts: Optional[dict] = None) -> None:
        raise TypeError("publish to a source's board; the mosaic is composed from them")

    def note_publish(self) -> None:
        """Called with the shared condition held, after a source's board changed."""
        self.seq += 1

    def jpeg(self) -> Tuple[int, Optional[bytes]]:
        with self._compose:  # one viewer composes and encodes; the others then take its JPEG
            with self.cond:
                seq = self.seq
                if self._jpeg_seq == seq:
                    return seq, self._jpeg
                newer = [(k, b.frame, b.seq) for k, b in enumerate(self.boards)
                         if b.frame is not None and b.seq != self._placed[k]]
            for index, frame, board_seq in newer:
                self.mosaic.put(index, frame)
                self._placed[index] = board_seq
            if self.mosaic.image is None:
                return seq, None
            ok, data = cv2.imencode(".jpg", self.mosaic.image, [cv2.IMWRITE_JPEG_QUALITY, self.quality])
            payload = data.tobytes() if ok else None
            with self.cond:
                self._jpeg, self._jpeg_seq = payload, seq
            return seq, payload


class _Handler(BaseHTTPRequestHandler):
    server_version = "edge-edet-mjpeg"
    boards: List[_FrameBoard]  # one per source; set on the per-server subclass
    board: _FrameBoard  # what /stream.mjpg shows: the one source's board, or the mosaic of all
    names: List[str]
    timeout = IDLE_TIMEOUT_S  # socket timeout: an idle or stalled client lets its thread go

    def setup(self):
        super().setup()
        self.server.expect_request(self.connection)

    def finish(self):
        self.server.request_done(self.connection)
        try:
            super().finish()
        except CLIENT_GONE:
            pass

    def parse_request(self) -> bool:
        if not super().parse_request():
            return False
        self.server.request_done(self.connection)  # the whole request arrived in time
        if self.request_version == "HTTP/0.9":  # no status line can be sent: close without an answer
            self.close_connection = True
            return False
        return True

    def log_message(self, *args):  # keep the terminal for the run summary
        pass

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # noqa: N802 (http.server naming)
        path = self.path.split("?", 1)[0]
        per_source = PER_SOURCE.match(path)
        if path in ("/", "/index.html"):
            self._send(200, PAGE, "text/html; charset=utf-8")
        elif path == "/frame.jpg":
            self._frame(self.board)
        elif path == "/stream.mjpg":
            self._stream(self.board)
        elif path == "/counts":
            self._counts(None)
        elif per_source and int(per_source.group(2)) < len(self.boards) and \
                per_source.group(3) == {"stream": ".mjpg", "frame": ".jpg", "counts": None}[per_source.group(1)]:
            kind, index = per_source.group(1), int(per_source.group(2))
            if kind == "stream":
                self._stream(self.boards[index])
            elif kind == "frame":
                self._frame(self.boards[index])
            else:
                self._counts(index)
        else:
            self._send(404, b"not found\n", "text/plain")

    def _frame(self, board: _FrameBoard) -> None:
        _, data = board.jpeg()
        if data is None:
            self._send(503, b"no frame yet\n", "text/plain")
        else:
            self._send(200, data, "image/jpeg")

    def _counts(self, index: Optional[int]) -> None:
        """Source `index`'s counts; or, for /counts, the one source's, or with several every source's:
        {"sources": [{"source", "name", "counts"}, ...]}."""
        if all(board.counts is None for board in self.boards):
            body = {"error": "no counts: run with --track (and --line / --zone to count)"}
            self._send(404, json.dumps(body).encode("utf-8"), "application/json")
            return
        if index is not None or len(self.boards) == 1:
            body = self.boards[index or 0].counts
        else:
            body = {"sources": [{"source": k, "name": name, "counts": board.counts}
                                for k, (name, board) in enumerate(zip(self.names, self.boards))]}
        self._send(200, json.dumps(body).encode("utf-8"), "application/json")

    def _stream(self, board: _FrameBoard) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        self.end_headers()
        seq = 0
        try:
            while not board.closed:
                newer = board.wait_newer(seq)
                if newer <= seq:
                    continue
                seq, data = board.jpeg()
                if data is None:
                    continue
                self.wfile.write(f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                                 f"Content-Length: {len(data)}\r\n\r\n".encode("ascii"))
                self.wfile.write(data)
                self.wfile.write(b"\r\n")
                self.wfile.flush()
                with board.cond:
                    board.frames_sent += 1
        except CLIENT_GONE:
            pass  # the viewer went away or stopped reading
        self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = False  # a busy port must fail, not be shared
    request_queue_size = LISTEN_BACKLOG
    max_clients = MAX_CLIENTS

    def __init__(self, *args, **kwargs):
        self._lock = threading.Lock()
        self.active = 0
        self._deadlines = {}  # connection -> when its request must have arrived
        super().__init__(*args, **kwargs)

    def expect_request(self, connection) -> None:
        with self._lock:
            self._deadlines[connection] = time.monotonic() + REQUEST_TIMEOUT_S

    def request_done(self, connection) -> None:
        with self._lock:
            self._deadlines.pop(connection, None)

    def service_actions(self) -> None:
        """Called by serve_forever every poll: connections whose request is overdue are cut, freeing their slot."""
        now = time.monotonic()
        with self._lock:
            overdue = [c for c, deadline in self._deadlines.items() if deadline <= now]
            for connection in overdue:
                del self._deadlines[connection]
        for connection in overdue:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request, client_address) -> None:
        """A viewer that left mid-answer is normal; anything else is one line, never a traceback."""
        exc = sys.exc_info()[1]
        if isinstance(exc, CLIENT_GONE) or (isinstance(exc, OSError) and exc.errno in (errno.EPIPE, errno.ENOTCONN)):
            return
        print(f"edge-edet: warning: the preview's answer to {client_address[0]} failed: {exc}", file=sys.stderr,
              flush=True)

    def process_request(self, request, client_address):
        """One thread per client up to max_clients; beyond that a 503 and the socket closed at once."""
        with self._lock:
            busy = self.active >= self.max_clients
            if not busy:
                self.active += 1
        if not busy:
            super().process_request(request, client_address)
            return
        try:
            request.settimeout(1.0)
            request.sendall(BUSY_RESPONSE)
        except OSError:
            pass
        self.shutdown_request(request)

    def process_request_thread(self, request, client_address):
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._lock:
                self.active -= 1


class _Server6(_Server):
    address_family = socket.AF_INET6


class MjpegServer:
    """Binds at construction (so a busy port is reported before the stream starts).  `sources`: the
    names of the sources whose frames it serves (one, unnamed, by default)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, quality: int = 80, sources: Sequence[str] = ("",)):
        names = list(sources) or [""]
        cond = threading.Condition()
        self.boards = [_FrameBoard(quality, cond) for _ in names]
        self.board = self.boards[0] if len(names) == 1 else _MosaicBoard(quality, self.boards, names)
        handler = type("Handler", (_Handler,), {"boards": self.boards, "board": self.board, "names": names})
        try:
            server_class = _Server6 if ":" in host else _Server  # [::1]:8080 is an IPv6 address
            self.server = server_class((host, int(port)), handler)
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                reason = "already in use" if exc.errno == errno.EADDRINUSE else "not allowed for this user"
                raise EdgeEdetError(f"cannot serve the preview on {host}:{port}: the port is {reason}; "
                                    f"pick another with --serve HOST:PORT") from None
            raise EdgeEdetError(f"cannot serve the preview on {host}:{port}: {exc.strerror or exc}") from None
        if host not in LOOPBACK:
            print(f"edge-edet: note: the preview on {host}:{port} is reachable from the network",
                  file=sys.stderr)
        self.host, self.port = self.server.server_address[:2]
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="mjpeg-server", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def publish(self, frame: np.ndarray, counts: Optional[dict] = None, source: int = 0) -> None:
        board = self.boards[source]
        with board.cond:
            board.publish(frame, counts)
            if board is not self.board:  # the mosaic shows it too
                self.board.note_publish()

    @property
    def frames_sent(self) -> int:
        """Stream parts sent so far, to all viewers together, of every stream."""
        boards = self.boards if self.board in self.boards else self.boards + [self.board]
        return sum(board.frames_sent for board in boards)

    def close(self) -> None:
        for board in self.boards + [self.board]:
            board.close()
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)
