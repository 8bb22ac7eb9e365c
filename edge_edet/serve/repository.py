"""`edge-edet triton-repo`: a standard Triton model repository for the full server (NGC container, Kubernetes).

    REPO/NAME/config.pbtxt        platform onnxruntime_onnx or tensorrt_plan, or backend openvino (the
                                  same ONNX, `--platform openvino`), max_batch_size from the export,
                                  dynamic_batching, `images` UINT8 HxWx3, the four outputs,
                                  instance_group, the artifact metadata as the `edge_edet` parameter
    REPO/NAME/labels.txt          one label per line (detection_classes indexes it)
    REPO/NAME/1/model.onnx        or model.plan

The config is built as tritonclient's `ModelConfig` protobuf and written in protobuf text
format, so it is exactly what Triton parses.  The repository is assembled in a temporary folder
beside REPO and moved into place, so a failure leaves nothing half-written; NAME is one folder
name (never '..'), and the input model may not lie inside the folder it would replace.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from typing import Optional

from ..contract.errors import EdgeEdetError
from ..contract.fileio import describe_os_error, remove_stale_partials
from ..contract.metadata import METADATA_KEY, DeployInfo, read_onnx_metadata, read_sidecar
from ..contract.names import ENGINE_EXTENSIONS
from .server import DEFAULT_QUEUE_DELAY_US, model_name
from .tensors import batching, check_servable, input_spec, output_specs, served_batch

LABELS_FILE = "labels.txt"
# --platform (contract.names.TRITON_PLATFORMS): (Triton platform, Triton backend, model file in REPO/NAME/1/)
PLATFORMS = {"onnxruntime": ("onnxruntime_onnx", "", "model.onnx"), "tensorrt": ("tensorrt_plan", "", "model.plan"),
             "openvino": ("", "openvino", "model.onnx")}  # Triton's OpenVINO backend reads the ONNX as it is
TYPES = {"uint8": "TYPE_UINT8", "int32": "TYPE_INT32", "float32": "TYPE_FP32"}


def read_artifact(path: str) -> DeployInfo:
    if not os.path.isfile(path):
        raise EdgeEdetError(f"model file {path} does not exist")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".onnx":
        return read_onnx_metadata(path)
    if ext in ENGINE_EXTENSIONS:
        return read_sidecar(path)
    raise EdgeEdetError(f"{path}: unknown model type '{ext}'; expected .onnx or a TensorRT engine "
                        f"({', '.join(ENGINE_EXTENSIONS)})")


def default_platform(model_path: str) -> str:
    """The platform a model file is served on unless --platform says otherwise: TensorRT for an engine,
    ONNX Runtime for an .onnx."""
    return "onnxruntime" if os.path.splitext(model_path)[1].lower() == ".onnx" else "tensorrt"


def model_config(info: DeployInfo, name: str, engine: bool, max_batch: int, instances: int = 1,
                 max_queue_delay_us: int = DEFAULT_QUEUE_DELAY_US, platform: Optional[str] = None,
                 device: str = "CPU"):
    """The ModelConfig protobuf of a served edge_edet model (`platform`: a key of PLATFORMS; by default
    tensorrt for an engine, onnxruntime for an .onnx; `device`: OpenVINO's TARGET_DEVICE)."""
    try:
        from tritonclient.grpc import model_config_pb2 as pb
    except ImportError:
        raise EdgeEdetError("writing a Triton model repository needs tritonclient: pip install tritonclient") from None
    import numpy as np

    platform = platform or ("tensorrt" if engine else "onnxruntime")
    triton_platform, triton_backend, model_file = PLATFORMS[platform]
    config = pb.ModelConfig(name=name, platform=triton_platform, backend=triton_backend)
    if triton_backend:
        config.default_model_filename = model_file
    rule = batching(info, max_batch)  # a dynamic export batches; a static one is served whole (tensors.py)
    config.max_batch_size = rule.max_batch_size
    for spec, group in [(input_spec(info), config.input)] + [(s, config.output) for s in output_specs(info)]:
        tensor = group.add(name=spec.name, data_type=pb.DataType.Value(TYPES[np.dtype(spec.dtype).name]))
        tensor.dims.extend(rule.lead + tuple(spec.dims))
        if spec.name == "detection_classes":
            tensor.label_filename = LABELS_FILE
    if rule.dynamic_batcher:
        config.dynamic_batching.max_queue_delay_microseconds = int(max_queue_delay_us)
    group = config.instance_group.add(count=int(instances))
    group.kind = pb.ModelInstanceGroup.KIND_GPU if engine else pb.ModelInstanceGroup.KIND_AUTO
    if platform == "openvino":
        group.kind = pb.ModelInstanceGroup.KIND_CPU  # Triton's kind: NVIDIA GPUs; OpenVINO picks its own device
        for key, value in openvino_parameters(instances, config.max_batch_size, device).items():
            config.parameters[key].string_value = value
    config.parameters[METADATA_KEY].string_value = info.to_json()
    return config


def openvino_parameters(instances: int, max_batch_size: int, device: str = "CPU") -> dict:
    """Triton's OpenVINO backend parameters: one stream with the latency hint for one instance, a stream
    per instance with the throughput hint for several; a batch Triton forms smaller than max_batch_size is
    padded (that backend compiles the model at max_batch_size and refuses smaller batches otherwise).
    It has no execution-mode parameter: on a CPU with bf16 it computes in bf16 (docs/openvino.md)."""
    parameters = {"TARGET_DEVICE": device.upper(), "NUM_STREAMS": str(max(1, int(instances))),
                  "PERFORMANCE_HINT": "THROUGHPUT" if instances > 1 else "LATENCY"}
    if max_batch_size > 1:
        parameters["ENABLE_BATCH_PADDING"] = "YES"
    return parameters


def config_text(config) -> str:
    from google.protobuf import text_format

    return text_format.MessageToString(config)


def _check_target(repo: str, force: bool) -> str:
    full = os.path.abspath(os.path.expanduser(repo))
    parent = os.path.dirname(full)
    if not os.path.isdir(parent):
        raise EdgeEdetError(f"--repo {repo}: folder {parent} does not exist")
    if os.path.exists(full) and not os.path.isdir(full):
        raise EdgeEdetError(f"--repo {repo} is a file, not a folder")
    if os.path.isdir(full) and os.listdir(full) and not force:
        raise EdgeEdetError(f"--repo {repo} exists and is not empty; pass --force to replace its model folder "
                            f"(other models in it are kept)")
    if not os.access(parent, os.W_OK) or (os.path.isdir(full) and not os.access(full, os.W_OK)):
        raise EdgeEdetError(f"--repo {repo}: the folder is not writable")
    return full


def _inside(path: str, folder: str) -> bool:
    """Whether `path` is `folder` or lies under it, comparing real paths (links resolved)."""
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _check_inputs_survive(inputs, target: str) -> None:
    """Replacing REPO/NAME must not delete the model being served from it (its .onnx or engine + sidecar)."""
    for what, path in inputs:
        if path and os.path.exists(path) and _inside(path, target):
            raise EdgeEdetError(f"{what} {path} lies inside {target}, the model folder this would replace; copy "
                                f"it elsewhere first or give another --name")


def _stage(staging: str, name: str, model_path: str, platform: str, config, labels) -> str:
    """REPO/NAME assembled in the staging folder; returns its path."""
    model_dir = os.path.join(staging, name)
    os.makedirs(os.path.join(model_dir, "1"))
    shutil.copyfile(model_path, os.path.join(model_dir, "1", PLATFORMS[platform][2]))
    with open(os.path.join(model_dir, "config.pbtxt"), "w", encoding="utf-8") as handle:
        handle.write(config_text(config))
    with open(os.path.join(model_dir, LABELS_FILE), "w", encoding="utf-8") as handle:
        handle.write("".join(f"{label}\n" for label in labels))
    for folder, _, files in os.walk(staging):
        os.chmod(folder, 0o755)
        for file in files:
            os.chmod(os.path.join(folder, file), 0o644)
    return model_dir


def write_repository(model_path: str, repo: str, name: Optional[str] = None, force: bool = False,
                     max_batch: Optional[int] = None, instances: int = 1,
                     max_queue_delay_us: int = DEFAULT_QUEUE_DELAY_US, platform: Optional[str] = None,
                     device: str = "CPU") -> str:
    """Write REPO/NAME (see the module docstring); returns the model folder.  `platform`: onnxruntime,
    openvino (Triton's OpenVINO backend on the same .onnx, `device` its TARGET_DEVICE) or tensorrt.

    Nothing is written outside REPO/NAME (NAME is one folder name, never '..'), the inputs are never
    inside what is replaced, and the work happens in one hidden staging folder beside REPO (named by
    our pid, so one a killed run left is removed by the next): a failure, a full disk included,
    leaves REPO as it was and nothing hidden behind."""
    platform = platform or default_platform(model_path)
    if platform not in PLATFORMS:
        raise EdgeEdetError(f"--platform {platform} is not one of {', '.join(PLATFORMS)}")
    if platform == "tensorrt" and default_platform(model_path) != "tensorrt":
        raise EdgeEdetError(f"--platform tensorrt serves a TensorRT engine and {model_path} is not one; build one "
                            f"with `edge-edet build`, or serve the .onnx with --platform onnxruntime or openvino")
    if platform != "tensorrt" and default_platform(model_path) == "tensorrt":
        raise EdgeEdetError(f"--platform {platform} serves an .onnx and {model_path} is a TensorRT engine; "
                            f"leave --platform out (tensorrt) or give the .onnx")
    info = read_artifact(model_path)
    engine = platform == "tensorrt"
    check_servable(info, model_path, onnx_runtime=not engine)
    name = model_name(model_path, name)
    batch = served_batch(info, max_batch, model_path)
    if instances < 1:
        raise EdgeEdetError("--instances must be at least 1")
    full = _check_target(repo, force)
    target = os.path.join(full, name)
    _check_inputs_survive([("--engine", model_path)] + ([("its sidecar", model_path + ".json")] if engine else []),
                          target)
    config = model_config(info, name, engine, batch, instances, max_queue_delay_us, platform, device)

    parent = os.path.dirname(full)
    remove_stale_partials(parent)  # staging folders of a triton-repo that was killed
    try:
        staging = tempfile.mkdtemp(prefix=f".edge_edet-{os.getpid()}-repo-", suffix=".tmp", dir=parent)
    except OSError as exc:
        raise EdgeEdetError(f"--repo {repo}: cannot write in {parent} ({describe_os_error(exc)})") from None
    try:
        try:
            model_dir = _stage(staging, name, model_path, platform, config, info.labels)
        except OSError as exc:
            kept = f"{repo} was left as it was" if os.path.isdir(full) else f"{repo} was not created"
            raise EdgeEdetError(f"writing the model repository failed ({describe_os_error(exc)}); {kept}") from None
        if not os.path.isdir(full):
            os.rename(staging, full)  # the whole repository appears at once
            return target
        old = os.path.join(staging, ".old")
        if os.path.lexists(target):
            os.rename(target, old)  # kept beside the new one until it is in place
        try:
            os.rename(model_dir, target)
        except OSError as exc:
            if os.path.lexists(old):
                os.rename(old, target)
            raise EdgeEdetError(f"replacing {target} failed ({describe_os_error(exc)}); it was left as it "
                                f"was") from None
        return target
    finally:
        shutil.rmtree(staging, ignore_errors=True)
