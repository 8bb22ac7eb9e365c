"""Triton back-end: `triton://HOST:PORT/MODEL`, inference on a remote Triton Inference Server.

Many cameras or boards share one server (DESIGN.md: "beyond one machine, an existing engine").
The client speaks gRPC through `tritonclient`; the model's input size, labels and thresholds
come from the `edge_edet` parameter of the served model's config (written by `edge-edet serve`
and `edge-edet triton-repo`), so nothing is re-typed on the client.

Faults: a server that is down or lacks the model stops the start with one sentence; a server
lost mid-stream makes `infer` raise BackendUnavailable with the next back-off delay (the
pipeline retries the same frame, or moves on to the newest one for latest-frame sources) until
it answers again or `give_up_s` has passed.  Round trips are timed here and Triton's own
statistics give the time spent inside the server, so the run summary separates network time
from inference.  Torch-free, like the rest of the runtime.
"""
from __future__ import annotations

import re
import sys
import time
from typing import Dict, Optional, Tuple
from urllib.parse import urlsplit

import numpy as np

from ...contract.errors import EdgeEdetError
from ...contract.metadata import METADATA_KEY, DeployInfo, MetadataError
from ..stats import StageTimes
from ...contract.names import INPUT_NAME, NMS_OUTPUTS
from .base import Backend, BackendUnavailable

SCHEME = "triton"
EXAMPLE = "triton://127.0.0.1:8001/person"
# a served model's name is one folder of a Triton model repository: letters, digits, '_', '.', '-', not
# starting with '.' (so never '.', '..' or a hidden folder) and at most 255 characters (a file name)
MODEL_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,254}$")
# gRPC status codes that mean "the server is not there (yet)", not "the request is wrong"
TRANSIENT = ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "UNKNOWN")
RESTARTING = ("unknown model", "is not ready", "not found", "unavailable")


def is_triton_uri(text) -> bool:
    return isinstance(text, str) and text.lower().startswith(SCHEME + "://")


def parse_triton_uri(uri: str) -> Tuple[str, int, str]:
    """(host, port, model) of `triton://HOST:PORT/MODEL`; one sentence for anything else."""
    bad = f"{uri} is not a Triton address: expected triton://HOST:PORT/MODEL, e.g. {EXAMPLE}"
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise EdgeEdetError(bad) from None
    model = parts.path[1:] if parts.path.startswith("/") else ""
    if (parts.scheme.lower() != SCHEME or not parts.hostname or port is None or not 0 < port < 65536
            or not MODEL_NAME.match(model) or parts.query or parts.fragment or parts.username):
        raise EdgeEdetError(bad)
    return parts.hostname, port, model


def _grpc_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _reason(exc: BaseException) -> str:
    """The first line of a tritonclient error, without its 'StatusCode.' prefix noise."""
    status = getattr(exc, "status", lambda: None)() if callable(getattr(exc, "status", None)) else None
    text = (getattr(exc, "message", lambda: None)() if callable(getattr(exc, "message", None)) else None) or str(exc)
    text = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
    code = str(status or "").replace("StatusCode.", "")
    return f"{code}: {text}" if code and code not in text else text


def _is_transient(exc: BaseException) -> bool:
    status = str(exc.status() if callable(getattr(exc, "status", None)) else "").replace("StatusCode.", "")
    text = str(exc).lower()
    return status in TRANSIENT or any(marker in text for marker in RESTARTING)


def _log(message: str) -> None:
    print(f"edge-edet: {message}", file=sys.stderr, flush=True)


class TritonBackend(Backend):
    name = "triton"

    def __init__(self, uri: str, timeout_s: float = 10.0, request_timeout_s: float = 60.0, give_up_s: float = 60.0,
                 backoff_s: float = 0.25, max_backoff_s: float = 2.0, log=_log, **_ignored):
        try:
            import tritonclient.grpc as grpcclient
            from tritonclient.utils import InferenceServerException
        except ImportError:
            raise EdgeEdetError("triton:// models need the Triton client: pip install tritonclient grpcio "
                                "(or pip install -e \".[opencv,triton]\")") from None
        self._grpc = grpcclient
        self._error = InferenceServerException
        self.uri = uri
        self.host, self.port, self.model = parse_triton_uri(uri)
        self.address = _grpc_address(self.host, self.port)
        self.request_timeout_s = float(request_timeout_s)
        self.give_up_s, self.backoff_s, self.max_backoff_s = float(give_up_s), float(backoff_s), float(max_backoff_s)
        self.log = log
        self.client = grpcclient.InferenceServerClient(self.address)
        config = self._connect(float(timeout_s))
        self.config = config
        where = f"model '{self.model}' on the Triton server at {self.address}"
        parameter = (config.get("parameters") or {}).get(METADATA_KEY, {}).get("string_value")
        if not parameter:
            self.client.close()
            raise MetadataError(f"{where} has no {METADATA_KEY} parameter in its config, so it is not an edge_edet "
                                f"deploy model; serve it with `edge-edet serve` or `edge-edet triton-repo`")
        self.info: DeployInfo = DeployInfo.from_json(parameter, where)
        inputs = [i.get("name") for i in config.get("input", [])]
        self.output_names = [o.get("name") for o in config.get("output", [])]
        if inputs != [INPUT_NAME] or not all(name in self.output_names for name in NMS_OUTPUTS):
            self.client.close()
            raise MetadataError(f"{where} does not have the `images` input and the {', '.join(NMS_OUTPUTS)} outputs "
                                f"of an edge_edet deploy model")
        self.output_names = list(NMS_OUTPUTS)
        served_batch = int(config.get("max_batch_size", 0) or 0)
        # a request carries up to served_batch frames (several sources' frames: one request), and the
        # server's dynamic batcher may join requests from many clients on top of that
        self.dynamic_batch = served_batch > 0
        self.max_batch = served_batch if served_batch > 0 else int(config["input"][0]["dims"][0])
        self.round_trips = StageTimes()
        self._failures = 0
        self._down_since: Optional[float] = None
        self._stats_start = self._server_stats()

    # -- connection ---------------------------------------------------------------------------
    def _connect(self, timeout_s: float) -> dict:
        """Server live, model ready, its config: or one sentence naming what is missing."""
        try:
            self.client.is_server_live(client_timeout=timeout_s)
        except self._error as exc:
            self.client.close()
            raise EdgeEdetError(f"no Triton server answers at {self.address} ({_reason(exc)}); start one with "
                                f"`edge-edet serve --engine MODEL` or check the address") from None
        try:
            ready = self.client.is_model_ready(self.model, client_timeout=timeout_s)
            if not ready:
                served = self._served_models(timeout_s)
                self.client.close()
                raise EdgeEdetError(f"the Triton server at {self.address} has no model '{self.model}' ready"
                                    + (f" (it serves: {', '.join(served) or 'nothing'})" if served is not None else ""))
            return self.client.get_model_config(self.model, as_json=True, client_timeout=timeout_s)["config"]
        except self._error as exc:
            self.client.close()
            raise EdgeEdetError(f"the Triton server at {self.address} did not describe model '{self.model}' "
                                f"({_reason(exc)})") from None

    def _served_models(self, timeout_s: float) -> Optional[list]:
        """Names of the ready models, or None where the server restricts its repository API."""
        try:
            index = self.client.get_model_repository_index(as_json=True, client_timeout=timeout_s)
        except self._error:
            return None
        return sorted({m.get("name", "") for m in index.get("models", []) if m.get("state") == "READY"})

    def _unavailable(self, exc: BaseException) -> BackendUnavailable:
        now = time.monotonic()
        reason = _reason(exc)
        if self._down_since is None:
            self._down_since = now
            self.log(f"lost the Triton server at {self.address} ({reason}); reconnecting with back-off "
                     f"for up to {self.give_up_s:.0f} s")
        elif now - self._down_since > self.give_up_s:
            raise EdgeEdetError(f"the Triton server at {self.address} has not answered for {self.give_up_s:.0f} s "
                                f"({reason}); giving up")
        delay = min(self.max_backoff_s, self.backoff_s * (2 ** self._failures))
        self._failures += 1
        return BackendUnavailable(f"Triton server at {self.address} unavailable ({reason})", retry_in=delay)

    # -- inference ----------------------------------------------------------------------------
    def infer(self, images: np.ndarray) -> Dict[str, np.ndarray]:
        grpc = self._grpc
        request = grpc.InferInput(INPUT_NAME, list(images.shape), "UINT8")
        request.set_data_from_numpy(np.ascontiguousarray(images))
        wanted = [grpc.InferRequestedOutput(name) for name in self.output_names]
        started = time.perf_counter()
        try:
            result = self.client.infer(self.model, [request], outputs=wanted, client_timeout=self.request_timeout_s)
        except self._error as exc:
            if _is_transient(exc):
                raise self._unavailable(exc) from None
            raise EdgeEdetError(f"the Triton server at {self.address} refused a request for '{self.model}' "
                                f"({_reason(exc)})") from None
        self.round_trips.add(time.perf_counter() - started)
        if self._down_since is not None:
            self.log(f"reconnected to the Triton server at {self.address} after "
                     f"{time.monotonic() - self._down_since:.1f} s")
            self._down_since, self._failures = None, 0
            self._stats_start = None  # a restarted server counts from zero again
        return {name: result.as_numpy(name) for name in self.output_names}

    # -- reporting ----------------------------------------------------------------------------
    def _server_stats(self) -> Optional[dict]:
        """Cumulative counters of this model on the server (all clients), or None if unreachable."""
        try:
            stats = self.client.get_inference_statistics(self.model, as_json=True, client_timeout=5.0)
        except self._error:
            return None
        rows = [row for row in stats.get("model_stats", []) if row.get("name") == self.model]
        if not rows:
            return None
        row, flat = rows[0], {}
        inference = row.get("inference_stats", {})
        for key in ("success", "queue", "compute_input", "compute_infer", "compute_output"):
            flat[f"{key}_count"] = int(inference.get(key, {}).get("count", 0))
            flat[f"{key}_ns"] = int(inference.get(key, {}).get("ns", 0))
        flat["inference_count"] = int(row.get("inference_count", 0))
        flat["execution_count"] = int(row.get("execution_count", 0))
        return flat

    def remote_timing(self) -> dict:
        """Round trip (client side) against the time inside the server (Triton's statistics, all
        clients of this model over this run); network = round trip - server time, per request."""
        trips = self.round_trips.summary()
        result = {"round_trip": trips}
        now = self._server_stats()
        if now is None:
            return result
        start = self._stats_start or {key: 0 for key in now}
        delta = {key: now[key] - start.get(key, 0) for key in now}
        if any(value < 0 for value in delta.values()):  # the server restarted since we started counting
            delta = now
        requests = delta["success_count"]
        if requests <= 0:
            return result
        per = {key: delta[f"{key}_ns"] / requests / 1e6 for key in
               ("success", "queue", "compute_input", "compute_infer", "compute_output")}
        compute = per["compute_input"] + per["compute_infer"] + per["compute_output"]
        server = {"requests": requests, "mean_request_ms": round(per["success"], 3),
                  "mean_queue_ms": round(per["queue"], 3), "mean_compute_ms": round(compute, 3)}
        if delta["execution_count"] > 0:
            server["mean_batch"] = round(delta["inference_count"] / delta["execution_count"], 3)
        result["server"] = server
        if trips["mean_ms"] is not None:
            result["network_ms"] = round(max(0.0, trips["mean_ms"] - per["success"]), 3)
        return result

    def describe(self) -> dict:
        return {"backend": self.name, "server": self.address, "model": self.model, "remote": self.remote_timing(),
                "label": self.label()}

    def close(self) -> None:
        try:
            self.client.close()
        except Exception:
            pass
