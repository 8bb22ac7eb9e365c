"""Build a TensorRT engine from a deploy ONNX, on the machine that will run it.

Order matters: everything that can be refused cheaply (arguments, the ONNX, output paths, the
calibration cache) is refused before TensorRT is even imported; then the version-specific plan
(edge_edet.engine.plan) is applied call by call; after the build the engine inspector proves which
precision each layer got, and a build that asked for FP16/INT8 but came out FP32 is refused
rather than written.  The engine and its sidecar `<engine>.json` are written atomically.
"""
from __future__ import annotations

import contextlib
import datetime
import os
import threading
import time
import warnings
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional

from ..contract.errors import EdgeEdetError
from ..contract.names import INPUT_NAME
from ..contract.metadata import write_sidecar
from . import layer_report
from ..contract.fileio import check_output_file, write_bytes_atomic
from .calibrator import cache_for_version, make_cache_calibrator, read_cache_bytes, validate_with_precision_reader
from ..contract.machine import gpu_info, import_tensorrt, jetson_model, registered_plugins  # noqa: F401
from .graph import EFFICIENT_NMS, GraphFacts, inspect_onnx
from .plan import BuildOptions, BuildPlan, LOW_MEMORY_HINT, lowest_precision, make_plan, verify_precision
from ..contract.trt_logging import get_logger
from .versions import TrtVersion


@dataclass
class BuildResult:
    engine: str
    sidecar: str
    plan: BuildPlan
    precision: str
    layer_counts: Dict[str, int]
    summary: str
    build_seconds: float
    engine_bytes: int
    onnx_built: str
    layers: List[dict] = field(default_factory=list)


# -- checks that need neither TensorRT nor a GPU -------------------------------------------------
def check_writable_file(path: str, what: str) -> None:
    """Refuse an output path whose folder is missing or read-only, by trying to create a file there."""
    check_output_file(path, what)


def preflight(options: BuildOptions) -> GraphFacts:
    """Every refusal that costs seconds, done before the build that costs minutes."""
    from .plan import check_board, check_options

    check_options(options)
    check_board(options, jetson_model())
    facts = inspect_onnx(options.onnx)
    check_writable_file(options.engine, "engine")
    check_writable_file(options.engine + ".json", "sidecar")
    if options.timing_cache:
        check_writable_file(options.timing_cache, "timing cache")
        if os.path.exists(options.timing_cache) and not os.access(options.timing_cache, os.R_OK):
            raise EdgeEdetError(f"timing cache {options.timing_cache} is not readable")
    if options.calib_cache:
        read_cache_bytes(options.calib_cache)
        validate_with_precision_reader(options.calib_cache)
    return facts


# -- TensorRT calls, by name, never guarded by hasattr ------------------------------------------
def enum_member(enum, name: str, what: str, version: str):
    """getattr on a TensorRT enum that fails loudly: a requested flag is never silently skipped."""
    try:
        return getattr(enum, name)
    except AttributeError:
        raise EdgeEdetError(f"TensorRT {version} has no {what}.{name}; this build plan does not fit it "
                            f"(please report: the version dispatch should have refused it)") from None


@contextlib.contextmanager
def deprecated_tensorrt_call():
    """Around a TensorRT call that 10.1+ deprecates (the INT8 calibrator path): its bindings warn through
    Python (DeprecationWarning), which becomes an exception wherever warnings are errors (`python -W
    error`, pytest's filterwarnings).  The plan already told the user; the build must not fail on it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def network_creation_flags(trt, plan: BuildPlan) -> int:
    flags = 0
    for name in plan.network_flags:
        flags |= 1 << int(enum_member(trt.NetworkDefinitionCreationFlag, name,
                                      "NetworkDefinitionCreationFlag", plan.version))
    return flags


def missing_plugin_message(facts: GraphFacts, version: str, available: Optional[set]) -> Optional[str]:
    if available is None:
        return None
    missing = [p for p in facts.plugins if p not in available]
    if not missing:
        return None
    hint = ("; export the ONNX again with `--nms onnx` (standard NonMaxSuppression, which every TensorRT parses)"
            if EFFICIENT_NMS in missing else "")
    return (f"{os.path.basename(facts.path)} needs the TensorRT plugin {', '.join(missing)}, which "
            f"TensorRT {version} does not have{hint}")


def explain_parse_failure(errors: List[str], facts: GraphFacts, version: str) -> str:
    text = " | ".join(errors[:3]) or "no detail"
    if any(EFFICIENT_NMS in e or "plugin" in e.lower() for e in errors) and facts.uses_efficient_nms:
        return (f"TensorRT {version} cannot parse {os.path.basename(facts.path)}: the {EFFICIENT_NMS} plugin is "
                f"missing ({text}); export the ONNX again with `--nms onnx`")
    return f"TensorRT {version} cannot parse {os.path.basename(facts.path)}: {text}"


def explain_build_failure(errors: List[str], plan: BuildPlan) -> str:
    joined = " ".join(errors).lower()
    first = errors[-1] if errors else "TensorRT gave no reason"
    if "calibrat" in joined:
        return (f"the INT8 build could not use calibration cache {plan.calibration_cache} (it does not match this "
                f"ONNX or TensorRT version: {first}); re-run `edge-edet calibrate ... --cache` for this ONNX")
    if "out of memory" in joined or "cudaerrormemoryallocation" in joined or "insufficient" in joined:
        return f"the build ran out of memory ({first}); {LOW_MEMORY_HINT}"
    if "dla" in joined:
        return f"the DLA build failed ({first}); try --gpu-fallback or build for the GPU"
    return f"TensorRT could not build the engine: {first}"


def make_progress_monitor(trt, log: Callable[[str], None]):
    """IProgressMonitor (TensorRT 10.0+): prints top phases and their step counts."""

    class PhasePrinter(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.depth = {}
            self.lock = threading.Lock()

        def phase_start(self, phase_name, parent_phase, num_steps):
            with self.lock:
                depth = 0 if parent_phase is None else self.depth.get(parent_phase, 0) + 1
                self.depth[phase_name] = depth
                if depth <= 1:
                    log(f"{'  ' * (depth + 1)}{phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name, step):
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            with self.lock:
                self.depth.pop(phase_name, None)

    return PhasePrinter()


class Heartbeat:
    """TensorRT 8.5 has no progress monitor: say every 30 s that the build is alive."""

    def __init__(self, log: Callable[[str], None], every: float = 30.0):
        self.log, self.every, self.stop = log, every, threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        start = time.monotonic()
        while not self.stop.wait(self.every):
            self.log(f"  still building ({time.monotonic() - start:.0f} s; TensorRT 8.5 reports no progress)")

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()


def configure(trt, builder, plan: BuildPlan, options: BuildOptions, log):
    """An IBuilderConfig carrying every decision of `plan`; returns (config, objects TensorRT must outlive)."""
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, plan.workspace_bytes)
    for name in plan.builder_flags:
        config.set_flag(enum_member(trt.BuilderFlag, name, "BuilderFlag", plan.version))
    config.profiling_verbosity = trt.ProfilingVerbosity.DETAILED
    keepalive = []
    profile = None
    if plan.profile:
        profile = builder.create_optimization_profile()
        profile.set_shape(INPUT_NAME, *plan.profile)
        config.add_optimization_profile(profile)
    if plan.calibration_cache:
        cache = cache_for_version(read_cache_bytes(plan.calibration_cache), trt.__version__, plan.calibration_cache)
        with deprecated_tensorrt_call():  # deprecated since 10.1 (implicit INT8), still working in 10.x
            calibrator = make_cache_calibrator(trt, cache)
            config.int8_calibrator = calibrator
            if profile is not None:
                config.set_calibration_profile(profile)
        keepalive.append(calibrator)
    if plan.dla_core is not None:
        cores = int(builder.num_DLA_cores)
        if plan.dla_core >= cores:
            raise EdgeEdetError(f"--dla-core {plan.dla_core} does not exist here ({cores} DLA cores"
                                f"{'' if cores else ': this GPU has no DLA'})")
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = plan.dla_core
    if plan.hardware_compatibility:
        config.hardware_compatibility_level = enum_member(trt.HardwareCompatibilityLevel, plan.hardware_compatibility,
                                                          "HardwareCompatibilityLevel", plan.version)
    set_timing_cache(config, options.timing_cache, log)
    if plan.progress_monitor:
        monitor = make_progress_monitor(trt, log)
        try:
            config.progress_monitor = monitor
            keepalive.append(monitor)
        except (AttributeError, TypeError):  # progress display only: fall back to the heartbeat
            plan.progress_monitor = False
    return config, keepalive


def set_timing_cache(config, path: Optional[str], log) -> None:
    """Load the timing cache at `path` (if any) into `config`, or an empty one when TensorRT cannot use it.

    TensorRT's answers are checked, as trtexec does: create_timing_cache returns None for a corrupt
    file, set_timing_cache returns False for a cache from another GPU or TensorRT version.  Either
    way the build goes on with an empty cache, which is saved over the unusable one afterwards.
    (Return values from the TensorRT API docs and trtexec; tested against the stand-in, not yet on a GPU.)"""
    blob = b""
    if path and os.path.isfile(path):
        with open(path, "rb") as handle:
            blob = handle.read()
        log(f"timing cache {path}: {len(blob)} bytes loaded")
    cache = config.create_timing_cache(blob)
    if cache is None:
        log(f"timing cache {path} is corrupt (TensorRT cannot use it): starting an empty one")
        cache = config.create_timing_cache(b"")
    if not config.set_timing_cache(cache, False):
        log(f"timing cache {path} was made on another GPU or TensorRT version: starting an empty one")
        cache = config.create_timing_cache(b"")
        if cache is None or not config.set_timing_cache(cache, False):
            raise EdgeEdetError("TensorRT refused even an empty timing cache; build without --timing-cache")


def save_timing_cache(config, path: str, log) -> None:
    """Write the timing cache after the engine: a failure here must not cost the finished build."""
    try:
        cache = config.get_timing_cache()
        data = cache.serialize() if cache is not None else None
        if data is None:
            raise RuntimeError("TensorRT returned no timing cache")
        write_bytes_atomic(path, bytes(data))
        log(f"timing cache saved to {path}")
    except Exception as exc:  # the engine is already written; say so and go on
        log(f"warning: the timing cache was not saved to {path} ({exc}); the engine is fine")


def inspect_layers(trt, engine) -> List[dict]:
    inspector = engine.create_engine_inspector()
    text = inspector.get_engine_information(trt.LayerInformationFormat.JSON)
    return layer_report.layer_precisions(layer_report.parse_engine_information(text))


def convert_to_fp16(onnx_path: str, engine_path: str, log) -> str:
    """11.x, --precision fp16 on an FP32 graph: the precision module writes the FP16 ONNX beside the engine."""
    try:
        from ..precision.fp16 import convert_to_fp16 as convert
    except ImportError:
        raise EdgeEdetError("FP16 conversion (edge_edet.precision.fp16) is not available in this install; "
                            "convert on a workstation with `edge-edet convert` and build the FP16 ONNX") from None
    stem = os.path.splitext(os.path.basename(onnx_path))[0]
    target = os.path.join(os.path.dirname(os.path.abspath(engine_path)), stem + "_fp16.onnx")
    if os.path.abspath(target) == os.path.abspath(onnx_path):
        target = os.path.join(os.path.dirname(target), stem + "_fp16_converted.onnx")
    written = convert(onnx_path, target) or target
    log(f"converted {onnx_path} to mixed-precision FP16: {written}")
    return written


def build_engine(options: BuildOptions, log: Callable[[str], None] = print) -> BuildResult:
    """`edge-edet build` and build_engines/build_engine.py: ONNX in, engine + sidecar out."""
    facts = preflight(options)
    trt = import_tensorrt("building an engine")
    version = TrtVersion.parse(trt.__version__)
    plan = make_plan(version, facts, options, board=jetson_model())
    log(f"TensorRT {version} ({plan.generation}): {os.path.basename(options.onnx)} "
        f"[{facts.precision} graph] -> {options.engine} [{plan.target_precision}]")
    for note in plan.notes:
        log(f"  {note}")
    memory = gpu_info().get("memory_mib")
    if memory and memory <= 4600 and options.workspace_mib > 256:
        log(f"  this device has {memory} MiB: if the build is 'Killed', {LOW_MEMORY_HINT}")

    onnx_path = options.onnx
    if plan.convert_fp16:
        onnx_path = convert_to_fp16(options.onnx, options.engine, log)
        facts = inspect_onnx(onnx_path)
        if facts.precision != "fp16":
            raise EdgeEdetError(f"the FP16 conversion wrote {onnx_path} but it carries no float16 tensors")

    logger = get_logger(trt, options.verbose)
    mark = logger.mark()
    trt.init_libnvinfer_plugins(logger, "")
    problem = missing_plugin_message(facts, str(version), registered_plugins(trt))
    if problem:
        raise EdgeEdetError(problem)
    builder = trt.Builder(logger)
    network = builder.create_network(network_creation_flags(trt, plan))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(os.path.abspath(onnx_path)):
        errors = [str(parser.get_error(i).desc()) for i in range(parser.num_errors)] + logger.since(mark)
        raise EdgeEdetError(explain_parse_failure(errors, facts, str(version)))
    config, keepalive = configure(trt, builder, plan, options, log)

    log("building (this takes minutes on a Jetson)...")
    start = time.monotonic()
    if plan.progress_monitor:
        serialized = builder.build_serialized_network(network, config)
    else:
        with Heartbeat(log):
            serialized = builder.build_serialized_network(network, config)
    seconds = time.monotonic() - start
    if serialized is None:
        raise EdgeEdetError(explain_build_failure(logger.since(mark), plan))
    if any(getattr(k, "asked_for_batches", False) for k in keepalive):
        raise EdgeEdetError(explain_build_failure(["calibration cache does not cover the network"], plan))
    runtime = trt.Runtime(logger)
    if options.version_compatible:  # a version-compatible plan carries its lean runtime as host code
        runtime.engine_host_code_allowed = True
    engine = runtime.deserialize_cuda_engine(serialized)
    if engine is None:
        raise EdgeEdetError(f"TensorRT built an engine it cannot load back: {' '.join(logger.since(mark)[-2:])}")
    layers = inspect_layers(trt, engine)
    counts = layer_report.count_precisions(layers)
    summary = layer_report.summary_line(counts)
    log(f"layer precision: {summary}")
    refusal = verify_precision(plan.target_precision, counts, plan.expect_fp16)
    if refusal:
        raise EdgeEdetError(f"{refusal}; the engine was not written (see --verbose for TensorRT's log)")
    precision = lowest_precision(counts) or plan.target_precision

    write_bytes_atomic(options.engine, serialized)
    info = _sidecar_info(facts, plan, options, onnx_path, trt.__version__, precision, counts, summary, seconds)
    sidecar = write_sidecar(options.engine, info)
    if options.timing_cache:
        save_timing_cache(config, options.timing_cache, log)
    size = os.path.getsize(options.engine)
    log(f"wrote {options.engine} ({size / 2**20:.1f} MiB, {seconds:.0f} s) and {sidecar}")
    return BuildResult(engine=options.engine, sidecar=sidecar, plan=plan, precision=precision, layer_counts=counts,
                       summary=summary, build_seconds=seconds, engine_bytes=size, onnx_built=onnx_path, layers=layers)


def _sidecar_info(facts: GraphFacts, plan: BuildPlan, options: BuildOptions, onnx_path: str, version,
                  precision: str, counts: dict, summary: str, seconds: float):
    """The ONNX's DeployInfo plus what the engine adds (DESIGN.md: metadata travels with the artifact)."""
    info = facts.info  # of the graph actually built (the converted one on 11.x fp16)
    gpu = gpu_info()
    extra = dict(info.extra or {})
    extra.update(engine_extra(plan, options, onnx_path, version, precision, counts, summary, seconds, gpu,
                              jetson_model()))
    batch = info.batch
    dynamic = info.dynamic_batch
    if plan.profile:
        batch, dynamic = plan.profile[2][0], True
    return replace(info, precision=precision, batch=batch, dynamic_batch=dynamic, extra=extra)


def engine_extra(plan: BuildPlan, options: BuildOptions, onnx_path: str, version, precision: str, counts: dict,
                 summary: str, seconds: float, gpu: dict, board: Optional[str]) -> dict:
    """The sidecar's engine fields (pure: tested without TensorRT)."""
    return {
        "engine_precision": precision,
        "tensorrt_version": str(version),
        "gpu_name": gpu.get("name", "unknown"),
        "compute_capability": gpu.get("compute_capability", "unknown"),
        "board": board,
        "build_flags": plan.flags_record(),
        "build_seconds": round(float(seconds), 1),
        "built_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "source_onnx": os.path.basename(onnx_path),
        "layer_precision": counts,
        "layer_precision_summary": summary,
        "version_compatible": bool(options.version_compatible),
        "hardware_compatible": bool(options.hardware_compatible),
        "dla_core": plan.dla_core,
        "batch_profile": [s[0] for s in plan.profile] if plan.profile else None,
    }
