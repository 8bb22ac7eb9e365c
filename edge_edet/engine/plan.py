"""The build plan: every decision the builder takes, made here as plain data before TensorRT runs.

`make_plan(version, facts, options)` picks, for the installed TensorRT generation, whether the
network is strongly typed, which builder flags are set (by name), whether a calibration cache is
served, whether the ONNX is first converted to FP16, the optimisation profile, the workspace cap
and the DLA settings.  Every impossible combination is refused here with one sentence, so a user
never waits for a build that was doomed, and a precision flag is never silently dropped (the
TensorRT 11 trap: guarding `BuilderFlag.FP16` with `hasattr` builds FP32 without a word).

Dispatch (see the README's Jetson section for the user-facing table):
  * 11.x: strongly typed, always.  Precision comes from the ONNX: `--precision fp16` on an FP32
    graph converts it first (edge_edet.precision.fp16); INT8 needs a Q/DQ ONNX.
  * 10.x: FP16 / Q/DQ graphs build strongly typed; FP32 graphs take builder flags (FP16, INT8 with
    a calibration cache served by the legacy calibrator, deprecated since 10.1 but working).
  * 8.5: weakly typed with EXPLICIT_BATCH; builder flags; INT8 from a calibration cache or Q/DQ.
"""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import List, Optional, Tuple

from ..contract.errors import EdgeEdetError
from .graph import GraphFacts
from .versions import GEN_8, GEN_11, TrtVersion
from ..contract.names import BUILD_PRECISIONS, ENGINE_EXTENSIONS

PRECISION_CHOICES = BUILD_PRECISIONS
DEFAULT_WORKSPACE_MIB = 1024
PRECISION_ORDER = ("int8", "fp16", "fp32")  # lowest first: an engine "is" the lowest precision it uses
MAX_OPSET_8X = 17  # TensorRT 8.5 / 8.6's ONNX parser: opsets up to 17
LOW_MEMORY_HINT = ("on a 4 GB board use --workspace 256 (or lower) and add swap "
                   "(`sudo fallocate -l 4G /swapfile && sudo mkswap /swapfile && sudo swapon /swapfile`)")


@dataclass
class BuildOptions:
    onnx: str
    engine: str
    precision: Optional[str] = None  # None: whatever the graph carries
    calib_cache: Optional[str] = None
    workspace_mib: int = DEFAULT_WORKSPACE_MIB
    timing_cache: Optional[str] = None
    dla_core: Optional[int] = None
    gpu_fallback: bool = False
    batch: Optional[Tuple[int, int, int]] = None  # (min, opt, max)
    cameras: Optional[int] = None  # sources run will batch: the profile's optimal batch (with batch unset)
    version_compatible: bool = False
    hardware_compatible: bool = False
    verbose: bool = False


@dataclass
class BuildPlan:
    version: str
    generation: str
    graph_precision: str
    target_precision: str  # what the engine must prove it built (fp32 | fp16 | int8 | best)
    strongly_typed: bool
    network_flags: List[str] = field(default_factory=list)  # NetworkDefinitionCreationFlag names
    builder_flags: List[str] = field(default_factory=list)  # BuilderFlag names
    calibration_cache: Optional[str] = None  # served through the legacy calibrator (8.5, 10.x)
    convert_fp16: bool = False  # 11.x: convert the FP32 ONNX to FP16 first
    workspace_bytes: int = DEFAULT_WORKSPACE_MIB << 20
    profile: Optional[Tuple[Tuple[int, ...], Tuple[int, ...], Tuple[int, ...]]] = None  # images min/opt/max
    dla_core: Optional[int] = None
    hardware_compatibility: Optional[str] = None  # HardwareCompatibilityLevel member name
    progress_monitor: bool = False
    expect_fp16: bool = False  # an INT8 + FP16 graph: the layer proof also wants FP16 layers
    notes: List[str] = field(default_factory=list)  # sentences printed before the build

    def flags_record(self) -> dict:
        """What the sidecar stores under build_flags."""
        record = asdict(self)
        record.pop("notes")
        record["profile"] = [list(s) for s in self.profile] if self.profile else None
        return record


def parse_batch(text: str) -> Tuple[int, int, int]:
    """'1:4:8' -> (1, 4, 8); a single N means N:N:N."""
    parts = str(text).split(":")
    if len(parts) not in (1, 3):
        raise EdgeEdetError(f"--batch '{text}' is not MIN:OPT:MAX (for example 1:4:8) or a single number")
    try:
        values = tuple(int(p) for p in parts)
    except ValueError:
        raise EdgeEdetError(f"--batch '{text}' is not MIN:OPT:MAX with whole numbers (for example 1:4:8)") from None
    if len(values) == 1:
        values = values * 3
    low, opt, high = values
    if low < 1 or not low <= opt <= high:
        raise EdgeEdetError(f"--batch {text} must satisfy 1 <= MIN <= OPT <= MAX")
    return values


def check_options(options: BuildOptions) -> None:
    """Argument checks that need neither the ONNX nor TensorRT."""
    if options.precision is not None and options.precision not in PRECISION_CHOICES:
        raise EdgeEdetError(f"--precision {options.precision} is not one of {', '.join(PRECISION_CHOICES)}")
    if options.workspace_mib is None or int(options.workspace_mib) < 16:
        raise EdgeEdetError(f"--workspace {options.workspace_mib} MiB is too small (at least 16); {LOW_MEMORY_HINT}")
    if options.dla_core is not None and options.dla_core < 0:
        raise EdgeEdetError(f"--dla-core {options.dla_core} must be 0 or more (Orin and Xavier have cores 0 and 1)")
    if options.gpu_fallback and options.dla_core is None:
        raise EdgeEdetError("--gpu-fallback only means something with --dla-core N")
    if options.hardware_compatible and options.dla_core is not None:
        raise EdgeEdetError("--hardware-compatible engines run on GPUs only; drop --dla-core or --hardware-compatible")
    ext = os.path.splitext(options.engine)[1].lower()
    if ext not in ENGINE_EXTENSIONS:
        raise EdgeEdetError(f"--engine {options.engine} must end in {', '.join(ENGINE_EXTENSIONS)} "
                            f"(the runtime picks TensorRT by that extension)")
    if os.path.abspath(options.engine) == os.path.abspath(options.onnx):
        raise EdgeEdetError("--engine must not be the ONNX file itself")


def check_board(options: BuildOptions, board: Optional[str]) -> None:
    """Refusals that depend on the machine: NVIDIA's developer guide says hardware compatibility is
    not supported on Jetson (`board` is the device-tree model, None off a Jetson)."""
    if options.hardware_compatible and board and "jetson" in board.lower():
        raise EdgeEdetError(f"--hardware-compatible is not supported on Jetson ({board}); drop it: an engine "
                            f"built on the board runs on that board")


def make_plan(version, facts: GraphFacts, options: BuildOptions, board: Optional[str] = None) -> BuildPlan:
    """All build decisions for TensorRT `version` (a TrtVersion or its string) and this graph, on `board`
    (the Jetson model the build runs on, None off a Jetson)."""
    check_options(options)
    version = version if isinstance(version, TrtVersion) else TrtVersion.parse(version)
    generation = version.generation
    graph = facts.precision
    wanted = options.precision or graph
    name = os.path.basename(facts.path)
    notes: List[str] = []
    plan = BuildPlan(version=str(version), generation=generation, graph_precision=graph,
                     target_precision=wanted, strongly_typed=False,
                     workspace_bytes=int(options.workspace_mib) << 20,
                     progress_monitor=version.has_progress_monitor, notes=notes)

    if graph != "fp32" and wanted not in (graph, "best"):
        raise EdgeEdetError(f"{name} is already a {graph} graph (its precision is in the graph); for a "
                            f"{wanted} engine build the FP32 ONNX with --precision {wanted}")
    if graph == "int8" and options.calib_cache:
        raise EdgeEdetError(f"{name} carries its INT8 scales in Q/DQ nodes; drop --calib-cache")

    if generation == GEN_8 and facts.opset > MAX_OPSET_8X:
        hint = (" (an INT8 + FP16 graph from `calibrate --fp16`: calibrate without --fp16 for TensorRT 8.x, whose "
                "builder flags run the float layers in FP16)" if facts.fp16_compute
                else f"; export with --opset {MAX_OPSET_8X}")
        raise EdgeEdetError(f"{name} is ONNX opset {facts.opset} and TensorRT {version} parses opsets up to "
                            f"{MAX_OPSET_8X}{hint}")
    if generation == GEN_11:
        plan.strongly_typed = True  # always on in 11 (the creation flag is deprecated and ignored)
        if options.calib_cache:
            raise EdgeEdetError(f"TensorRT {version} removed implicit INT8 and calibrators, so --calib-cache "
                                f"cannot be used; build the Q/DQ ONNX that `edge-edet calibrate --output X_int8.onnx` writes")
        if wanted == "int8" and graph != "int8":
            raise EdgeEdetError(f"TensorRT {version} builds INT8 only from a Q/DQ graph and {name} has none; run "
                                f"`edge-edet calibrate --model {name} --images DIR --output X_int8.onnx` and build that")
        if wanted in ("fp16", "best") and graph == "fp32":
            plan.convert_fp16 = True
            plan.target_precision = "fp16"
            notes.append(f"TensorRT {version} has no FP16 builder flag (strongly typed only): converting {name} "
                         f"to mixed-precision FP16 first (fp16 compute, fp32 I/O)")
        elif wanted == "best":
            plan.target_precision = graph
        notes.append(f"TensorRT {version}: strongly typed build, precision taken from the graph")
    elif generation == "10.x" and graph in ("fp16", "int8"):
        plan.strongly_typed = True
        plan.network_flags = ["STRONGLY_TYPED"]
        plan.target_precision = graph
        notes.append(f"TensorRT {version}: {graph} graph, strongly typed build (precision from the graph)")
    else:
        if version.needs_explicit_batch_flag:
            plan.network_flags = ["EXPLICIT_BATCH"]
        if graph == "int8":  # 8.5 explicit quantization still needs the INT8 flag
            plan.builder_flags = ["INT8", "FP16"]
            plan.target_precision = "int8"
            notes.append(f"TensorRT {version}: Q/DQ graph, INT8 with FP16 fallback")
        elif graph == "fp16":  # 8.5 is weakly typed: the fp16 graph needs the flag to run in fp16
            plan.builder_flags = ["FP16"]
            plan.target_precision = "fp16"
            notes.append(f"TensorRT {version} is weakly typed: FP16 flag set so the fp16 graph runs in fp16")
        elif wanted == "fp16":
            plan.builder_flags = ["FP16"]
        elif wanted == "int8":
            if not options.calib_cache:
                raise EdgeEdetError(f"INT8 from the FP32 graph {name} needs --calib-cache FILE (written by "
                                    f"`edge-edet calibrate ... --cache X.calib`) or a Q/DQ ONNX")
            plan.builder_flags = ["INT8", "FP16"]
            plan.calibration_cache = options.calib_cache
            notes.append(f"INT8 with FP16 fallback from calibration cache {options.calib_cache}"
                         + (" (implicit INT8 is deprecated since TensorRT 10.1 but still works)"
                            if generation == "10.x" else ""))
        elif wanted == "best":
            plan.builder_flags = ["FP16"]
            if options.calib_cache:
                plan.builder_flags = ["INT8", "FP16"]
                plan.calibration_cache = options.calib_cache
            else:
                notes.append("--precision best without --calib-cache: FP16 (give a calibration cache for INT8 too)")
        elif options.calib_cache:
            raise EdgeEdetError(f"--calib-cache is only used for --precision int8 or best, not {wanted}")

    if plan.strongly_typed and graph == "int8":
        if facts.fp16_compute:
            plan.expect_fp16 = True
            notes.append("INT8 + FP16 graph: INT8 convolutions, the float layers between them in FP16")
        else:
            notes.append(f"strongly typed INT8: the layers between the INT8 convolutions run in FP32 as the graph "
                         f"types them; `edge-edet calibrate --fp16` writes them in FP16 (faster)")
    if facts.uses_efficient_nms and version.tuple >= (10, 12, 0):
        notes.append("the graph uses EfficientNMS_TRT, deprecated since TensorRT 10.12 with no replacement "
                     "planned; `--nms onnx` exports keep working on every version")
    _plan_profile(plan, facts, options)
    _plan_dla(plan, version, options, board)
    _plan_compatibility(plan, version, facts, options)
    if options.workspace_mib > 1024:
        notes.append(f"workspace {options.workspace_mib} MiB: {LOW_MEMORY_HINT}")
    return plan


def _plan_profile(plan: BuildPlan, facts: GraphFacts, options: BuildOptions) -> None:
    height, width = facts.input_shape[1], facts.input_shape[2]
    if height is None or width is None:
        raise EdgeEdetError(f"{os.path.basename(facts.path)} has a variable image size; export it with a fixed "
                            f"--input-size (the engine and the letterbox need one size)")
    if not facts.dynamic_batch:
        if options.batch and options.batch != (facts.static_batch,) * 3:
            raise EdgeEdetError(f"--batch {':'.join(map(str, options.batch))} needs a dynamic-batch graph; "
                                f"{os.path.basename(facts.path)} has a fixed batch of {facts.static_batch} "
                                f"(export with --dynamic-batch N)")
        if options.cameras and options.cameras != facts.static_batch:
            raise EdgeEdetError(f"--cameras {options.cameras} needs a dynamic-batch graph; "
                                f"{os.path.basename(facts.path)} has a fixed batch of {facts.static_batch} "
                                f"(export with --dynamic-batch {options.cameras})")
        return
    exported = max(1, facts.info.batch)
    if options.batch:
        low, opt, high = options.batch
    elif options.cameras:  # tuned for all the cameras at once; smaller batches (a source without a frame) still run
        low, opt, high = 1, options.cameras, max(options.cameras, exported)
    else:
        low, opt, high = 1, exported, exported
    plan.profile = tuple((b, height, width, 3) for b in (low, opt, high))


def _plan_dla(plan: BuildPlan, version: TrtVersion, options: BuildOptions, board: Optional[str]) -> None:
    if options.dla_core is None:
        return
    refusal = version.dla_refusal(board)
    if refusal:
        raise EdgeEdetError(refusal)
    if plan.target_precision == "fp32":
        raise EdgeEdetError("DLA runs FP16 or INT8 only; add --precision fp16 (or int8) with --dla-core")
    plan.dla_core = options.dla_core
    if options.gpu_fallback:
        plan.builder_flags = plan.builder_flags + ["GPU_FALLBACK"]
    else:
        plan.notes.append("DLA without --gpu-fallback: the build fails if any layer cannot run on the DLA "
                          "(NMS cannot); add --gpu-fallback to run those layers on the GPU")


def _plan_compatibility(plan: BuildPlan, version: TrtVersion, facts: GraphFacts, options: BuildOptions) -> None:
    if options.version_compatible or options.hardware_compatible:
        if not version.has_version_compatible:
            raise EdgeEdetError(f"--version-compatible / --hardware-compatible need TensorRT 8.6 or newer "
                                f"(this is {version})")
    if options.version_compatible:
        if facts.plugins:
            raise EdgeEdetError(f"a version-compatible engine cannot carry the plugin(s) {', '.join(facts.plugins)}; "
                                f"export with --nms onnx")
        plan.builder_flags = plan.builder_flags + ["VERSION_COMPATIBLE"]
    if options.hardware_compatible:
        plan.hardware_compatibility = "AMPERE_PLUS"
        plan.notes.append("hardware-compatible (Ampere and newer desktop GPUs) costs some speed; not on Jetson")


def lowest_precision(counts: dict) -> Optional[str]:
    """The precision an engine 'is': the lowest one any of its layers runs in."""
    for name in PRECISION_ORDER:
        if counts.get(name, 0) > 0:
            return name
    return None


def verify_precision(target: str, counts: dict, expect_fp16: bool = False) -> Optional[str]:
    """A sentence if the layer report contradicts the precision asked for, else None.

    This is the guard against the silent-FP32 trap: an FP16 or INT8 build whose engine has no
    layer in that precision is refused, whatever the builder said.  `expect_fp16`: an INT8 + FP16
    graph must also show FP16 layers (its float compute), not FP32 ones only.
    """
    known = sum(counts.get(name, 0) for name in PRECISION_ORDER)
    if not known:
        return None  # the inspector gave no per-layer types; nothing to prove either way
    if expect_fp16 and counts.get("fp16", 0) == 0:
        return (f"the INT8 + FP16 graph built with no FP16 layer ({counts.get('int8', 0)} INT8, "
                f"{counts.get('fp32', 0)} FP32): its float compute ran in FP32")
    if target in ("fp16", "best") and counts.get("fp16", 0) + counts.get("int8", 0) == 0:
        return f"the engine was asked for {target} but all {known} layers run in FP32"
    if target == "int8" and counts.get("int8", 0) == 0:
        return f"the engine was asked for int8 but none of its {known} layers runs in INT8"
    if target == "fp32" and counts.get("fp32", 0) == 0:
        return "the engine was asked for fp32 but no layer runs in FP32"
    return None
