"""A STAND-IN `tensorrt` module for one TensorRT version, strict to that version's real names.

Not TensorRT: it builds no kernels and runs no network.  It exists so the project's builder and
back-end run their real code paths against the exact Python surface of each TensorRT release
(read from the real bindings by surface.py).  Every public attribute of the module, of a class,
of an enum and of an instance is checked against that surface: a name the version lacks raises
AttributeError("TensorRT 8.6.1 has no IBuilderConfig.progress_monitor ..."), and a name the
version has but this stand-in gives no behaviour raises AttributeError saying so.

Least behaviour the flows need: the ONNX parser reads the graph's I/O, Q/DQ and float16 marks
with the onnx package; the builder returns bytes describing the engine (I/O tensors, per-layer
precision chosen like TensorRT would from the flags / strong typing / calibration cache); the
inspector returns JSON in the version's documented layout (8.x/10.x "Format/Datatype", 11.x
"DataType"); the runtime re-loads those bytes; the execution context records its calls and writes
fixed detections into the stand-in pycuda's device buffers.
"""
from __future__ import annotations

import json
import threading
import types
from typing import Optional

import numpy as np

from .surface import Surface

ENGINE_MAGIC = b"EDGE_EDET_STANDIN_ENGINE\n"
TIMING_MAGIC = b"EDGE_EDET_STANDIN_TIMING\n"

# What the stand-in has behaviour for: TensorRT class -> names it implements (module names below).
IMPLEMENTED = {
    "ILogger": {"Severity", "log"},
    "Logger": {"Severity", "log", "VERBOSE", "INFO", "WARNING", "ERROR", "INTERNAL_ERROR"},
    "IPluginRegistry": {"all_creators", "plugin_creator_list"},
    "IPluginCreator": {"name"},
    "Builder": {"create_network", "create_builder_config", "create_optimization_profile",
                "build_serialized_network", "num_DLA_cores"},
    "INetworkDefinition": {"num_inputs", "num_outputs"},
    "OnnxParser": {"parse_from_file", "num_errors", "get_error"},
    "ParserError": {"desc"},
    "IBuilderConfig": {"set_memory_pool_limit", "set_flag", "profiling_verbosity", "add_optimization_profile",
                       "int8_calibrator", "set_calibration_profile", "default_device_type", "DLA_core",
                       "hardware_compatibility_level", "create_timing_cache", "set_timing_cache",
                       "get_timing_cache", "progress_monitor"},
    "ITimingCache": {"serialize"},
    "IOptimizationProfile": {"set_shape"},
    "IProgressMonitor": {"phase_start", "step_complete", "phase_finish"},
    "IInt8EntropyCalibrator2": {"get_batch_size", "get_batch", "read_calibration_cache", "write_calibration_cache"},
    "Runtime": {"deserialize_cuda_engine", "engine_host_code_allowed"},
    "ICudaEngine": {"num_io_tensors", "get_tensor_name", "get_tensor_mode", "get_tensor_shape", "get_tensor_dtype",
                    "get_tensor_profile_shape", "create_execution_context", "create_engine_inspector"},
    "EngineInspector": {"get_engine_information"},
    "IExecutionContext": {"set_input_shape", "set_tensor_address", "execute_async_v3"},
}
ENUMS = ("BuilderFlag", "NetworkDefinitionCreationFlag", "MemoryPoolType", "ProfilingVerbosity", "DeviceType",
         "HardwareCompatibilityLevel", "LayerInformationFormat", "TensorIOMode", "DataType", "Severity")
MODULE_FUNCTIONS = ("init_libnvinfer_plugins", "get_plugin_registry", "nptype")


class StandinAccessLog:
    """(owner, name) pairs the project touched, for the API table's cross-check."""

    def __init__(self):
        self.lock = threading.Lock()
        self.used = set()

    def add(self, owner, name):
        with self.lock:
            self.used.add((owner, name))


def build_module(surface: Surface, access_log: Optional[StandinAccessLog] = None, plugins=("EfficientNMS_TRT",),
                 dla_cores: int = 2) -> types.ModuleType:
    """The stand-in module of `surface.version`."""
    version = surface.version
    log = access_log or StandinAccessLog()
    standin_classes = set()

    def missing(owner, name):
        where = f"{owner}.{name}" if owner else name
        return AttributeError(f"TensorRT {version} has no {where} (stand-in generated from the real "
                              f"tensorrt {version} bindings)")

    def check(owner: str, name: str):
        if not surface.has(owner, name):
            raise missing(owner, name)
        if owner is not None and name not in IMPLEMENTED.get(owner, ()) and not (owner in ENUMS or owner == "Logger"):
            raise AttributeError(f"stand-in tensorrt {version}: {owner}.{name} exists in TensorRT {version} "
                                 f"but the stand-in has no behaviour for it (add it to tests/trt_standin)")
        log.add(owner, name)

    class StrictMeta(type):
        def __getattribute__(cls, name):
            if not name.startswith("_"):
                owner = _standin_owner(cls)
                if owner is not None and not _user_defined(cls, name):
                    check(owner, name)
            return type.__getattribute__(cls, name)

    def _standin_owner(cls):
        for klass in type.__getattribute__(cls, "__mro__"):
            if klass in standin_classes:
                return type.__getattribute__(klass, "_trt_name")
        return None

    def _user_defined(cls, name):
        for klass in type.__getattribute__(cls, "__mro__"):
            if klass in standin_classes or klass is object:
                return False
            if name in type.__getattribute__(klass, "__dict__"):
                return True
        return False

    class Strict(metaclass=StrictMeta):
        """Base of every stand-in class: public names are checked against the version's surface."""
        _trt_name = "object"

        def __getattribute__(self, name):
            if not name.startswith("_"):
                cls = type(self)
                user_value = cls not in standin_classes and name in object.__getattribute__(self, "__dict__")
                if not user_value and not _user_defined(cls, name):
                    check(_standin_owner(cls), name)
            return object.__getattribute__(self, name)

        def __setattr__(self, name, value):
            if not name.startswith("_") and type(self) in standin_classes:
                check(_standin_owner(type(self)), name)
            object.__setattr__(self, name, value)

    def standin(name):
        def register(cls):
            cls._trt_name = name
            standin_classes.add(cls)
            return cls
        return register

    # -- enums ------------------------------------------------------------------------------------
    class EnumValue:
        def __init__(self, enum, name, value):
            self._enum, self.name, self.value = enum, name, value

        def __int__(self):
            return self.value

        __index__ = __int__

        def __eq__(self, other):
            return isinstance(other, EnumValue) and other._enum == self._enum and other.value == self.value

        def __hash__(self):
            return hash((self._enum, self.value))

        def __repr__(self):
            return f"<{self._enum}.{self.name}: {self.value}>"

    def make_enum(name, order):
        members = sorted(surface.members(name) if surface.is_enum(name) else set(order),
                         key=lambda m: (order.index(m) if m in order else len(order), m))
        values = {m: EnumValue(name, m, i) for i, m in enumerate(members) if surface.has(name, m)}

        class EnumMeta(StrictMeta):
            def __getattribute__(cls, attr):
                if not attr.startswith("_"):
                    check(name, attr)
                    if attr not in values:  # an enum whose members the surface could not scope
                        values[attr] = EnumValue(name, attr, len(values))
                    return values[attr]
                return type.__getattribute__(cls, attr)

        cls = EnumMeta(name, (), {"_trt_name": name, "_values": values})
        standin_classes.add(cls)
        return cls

    order = {  # value order where TensorRT's numbering matters to the flows (flag bits)
        "BuilderFlag": ["FP16", "BF16", "INT8", "DEBUG", "GPU_FALLBACK", "STRICT_TYPES", "REFIT",
                        "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS", "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS",
                        "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO", "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE"],
        "NetworkDefinitionCreationFlag": ["EXPLICIT_BATCH", "STRONGLY_TYPED"],
        "Severity": ["INTERNAL_ERROR", "ERROR", "WARNING", "INFO", "VERBOSE"],
        "DataType": ["FLOAT", "HALF", "INT8", "INT32", "BOOL", "UINT8", "FP8", "BF16", "INT64", "INT4"],
        "TensorIOMode": ["NONE", "INPUT", "OUTPUT"],
    }
    enums = {name: make_enum(name, order.get(name, [])) for name in ENUMS if surface.has_class(name)}

    def enum_value(enum_name, member):
        """An enum value for the stand-in's own use (not logged as a project access)."""
        values = type.__getattribute__(enums[enum_name], "_values")
        if member not in values:
            if not surface.has(enum_name, member):
                raise missing(enum_name, member)
            values[member] = EnumValue(enum_name, member, len(values))
        return values[member]

    Severity = enums["Severity"]
    dtype_of = {"uint8": "UINT8", "float32": "FLOAT", "float16": "HALF", "int32": "INT32", "int8": "INT8",
                "int64": "INT64", "bool": "BOOL"}
    major = int(version.split(".")[0])

    # -- logging and plugins ----------------------------------------------------------------------
    @standin("ILogger")
    class ILogger(Strict):
        def __init__(self):
            pass

    type.__setattr__(ILogger, "Severity", Severity)

    @standin("Logger")
    class Logger(ILogger):
        def __init__(self, min_severity=None):
            self._min = min_severity

        def log(self, severity, msg):
            pass

    for member in ("VERBOSE", "INFO", "WARNING", "ERROR", "INTERNAL_ERROR"):
        if surface.has("Severity", member):
            type.__setattr__(Logger, member, enum_value("Severity", member))
    type.__setattr__(Logger, "Severity", Severity)

    @standin("IPluginCreator")
    class IPluginCreator(Strict):
        def __init__(self, name):
            object.__setattr__(self, "_name", name)

        @property
        def name(self):
            return self._name

    @standin("IPluginRegistry")
    class IPluginRegistry(Strict):
        @property
        def all_creators(self):
            return [IPluginCreator(p) for p in plugins]

        @property
        def plugin_creator_list(self):
            return [IPluginCreator(p) for p in plugins]

    registry = IPluginRegistry()
    state = {"plugin_logger": None, "global_logger": None}

    def init_libnvinfer_plugins(logger, namespace):
        check(None, "init_libnvinfer_plugins")
        state["plugin_logger"] = logger  # TensorRT keeps this pointer for the life of the process
        return True

    def get_plugin_registry():
        check(None, "get_plugin_registry")
        return registry

    def nptype(trt_type):
        check(None, "nptype")
        names = {v: k for k, v in dtype_of.items()}
        return np.dtype(names[trt_type.name]).type

    def emit(logger, severity, text):
        target = state["global_logger"] or logger
        target.log(enum_value("Severity", severity), text)

    def remember_logger(logger):
        # TensorRT holds one logger per process: the first one given wins (the NVIDIA docs' warning)
        if state["global_logger"] is None:
            state["global_logger"] = logger

    # -- network, parser ----------------------------------------------------------------------------
    @standin("INetworkDefinition")
    class INetworkDefinition(Strict):
        def __init__(self, flags):
            self._flags = flags
            self._io = []
            self._precision = "fp32"
            self._plugins = []

        @property
        def num_inputs(self):
            return sum(1 for t in self._io if t["input"])

        @property
        def num_outputs(self):
            return sum(1 for t in self._io if not t["input"])

    @standin("ParserError")
    class ParserError(Strict):
        def __init__(self, text):
            self._text = text

        def desc(self):
            return self._text

    @standin("OnnxParser")
    class OnnxParser(Strict):
        def __init__(self, network, logger):
            self._network, self._logger, self._errors = network, logger, []

        def parse_from_file(self, path):
            import onnx
            from onnx import TensorProto

            model = onnx.load(path, load_external_data=False)
            names = {TensorProto.UINT8: "uint8", TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16",
                     TensorProto.INT32: "int32", TensorProto.INT64: "int64", TensorProto.INT8: "int8"}
            io = []
            for value, is_input in [(v, True) for v in model.graph.input] + [(v, False) for v in model.graph.output]:
                tensor = value.type.tensor_type
                shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
                io.append({"name": value.name, "input": is_input, "shape": shape,
                           "dtype": names.get(tensor.elem_type, "float32")})
            ops = {n.op_type for n in model.graph.node}
            for op in sorted(ops):
                if op.endswith("_TRT") and op not in plugins:
                    self._errors.append(f"No importer registered for op: {op}. Attempting to import as plugin.")
                    emit(self._logger, "ERROR", f"getPluginCreator could not find plugin: {op} version: 1")
                    return False
            has_fp16 = any(t.data_type == TensorProto.FLOAT16 for t in model.graph.initializer) or any(
                n.op_type == "Cast" and any(a.name == "to" and a.i == TensorProto.FLOAT16 for a in n.attribute)
                for n in model.graph.node)
            self._network._io = io
            self._network._precision = "int8" if {"QuantizeLinear", "DequantizeLinear"} & ops else (
                "fp16" if has_fp16 else "fp32")
            self._network._plugins = sorted(op for op in ops if op.endswith("_TRT"))
            return True

        @property
        def num_errors(self):
            return len(self._errors)

        def get_error(self, index):
            return ParserError(self._errors[index])

    # -- builder config -----------------------------------------------------------------------------
    @standin("IOptimizationProfile")
    class IOptimizationProfile(Strict):
        def __init__(self):
            self._shapes = {}

        def set_shape(self, name, min, opt, max):  # noqa: A002 (TensorRT's keyword names)
            self._shapes[name] = (tuple(min), tuple(opt), tuple(max))

    @standin("ITimingCache")
    class ITimingCache(Strict):
        def __init__(self, entries, device="standin-gpu"):
            self._entries, self._device = dict(entries), device

        def serialize(self):
            if getattr(module, "_standin_timing_serialize_fails", False):
                raise RuntimeError("ITimingCache::serialize failed (stand-in told to fail)")
            return TIMING_MAGIC + json.dumps({"device": self._device, "entries": self._entries}).encode()

    def read_timing(blob):
        if not blob:
            return ITimingCache({})
        if not bytes(blob).startswith(TIMING_MAGIC):
            return None  # TensorRT: "createTimingCache: corrupt or incompatible" -> nullptr
        data = json.loads(bytes(blob)[len(TIMING_MAGIC):])
        return ITimingCache(data["entries"], data["device"])

    @standin("IBuilderConfig")
    class IBuilderConfig(Strict):
        def __init__(self):
            self._flags, self._pools, self._profiles = set(), {}, []
            self._calibration_profile = self._calibrator = self._monitor = None
            self._timing = None
            self._device_type, self._dla_core, self._hw, self._verbosity = None, None, None, None

        def set_memory_pool_limit(self, pool, pool_size):
            self._pools[pool.name] = int(pool_size)

        def set_flag(self, flag):
            self._flags.add(flag.name)

        def add_optimization_profile(self, profile):
            self._profiles.append(profile)
            return len(self._profiles) - 1

        def set_calibration_profile(self, profile):
            self._calibration_profile = profile
            return True

        def create_timing_cache(self, serialized_timing_cache):
            return read_timing(serialized_timing_cache)

        def set_timing_cache(self, cache, ignore_mismatch):
            if cache is None:
                raise TypeError("set_timing_cache(): incompatible function arguments (cache is None)")
            if cache._device != "standin-gpu" and not ignore_mismatch:
                return False  # a cache from another device / TensorRT version
            self._timing = cache
            return True

        def get_timing_cache(self):
            return self._timing

        profiling_verbosity = property(lambda self: self._verbosity,
                                       lambda self, value: object.__setattr__(self, "_verbosity", value))
        int8_calibrator = property(lambda self: self._calibrator,
                                   lambda self, value: object.__setattr__(self, "_calibrator", value))
        default_device_type = property(lambda self: self._device_type,
                                       lambda self, value: object.__setattr__(self, "_device_type", value))
        DLA_core = property(lambda self: self._dla_core, lambda self, value: object.__setattr__(self, "_dla_core", value))
        hardware_compatibility_level = property(lambda self: self._hw,
                                                lambda self, value: object.__setattr__(self, "_hw", value))
        progress_monitor = property(lambda self: self._monitor,
                                    lambda self, value: object.__setattr__(self, "_monitor", value))

    # -- builder ------------------------------------------------------------------------------------
    @standin("Builder")
    class Builder(Strict):
        def __init__(self, logger):
            remember_logger(logger)
            self._logger = logger

        def create_network(self, flags=0):
            return INetworkDefinition(int(flags))

        def create_builder_config(self):
            return IBuilderConfig()

        def create_optimization_profile(self):
            return IOptimizationProfile()

        @property
        def num_DLA_cores(self):
            return dla_cores

        def build_serialized_network(self, network, config):
            strongly = major >= 11 or (surface.has("NetworkDefinitionCreationFlag", "STRONGLY_TYPED") and bool(
                network._flags & (1 << enum_value("NetworkDefinitionCreationFlag", "STRONGLY_TYPED").value)))
            flags = config._flags
            if config._monitor is not None:
                for phase, steps in (("Building engine", 2), ("Tactic selection", 3)):
                    config._monitor.phase_start(phase, None, steps)
                    for step in range(steps):
                        if config._monitor.step_complete(phase, step) is False:
                            emit(self._logger, "ERROR", "Build cancelled by the progress monitor")
                            return None
                    config._monitor.phase_finish(phase)
            dynamic = any(-1 in t["shape"] for t in network._io if t["input"])
            if dynamic and not config._profiles:
                emit(self._logger, "ERROR", "Network has dynamic or shape inputs, but no optimization profile "
                                            "has been defined.")
                return None
            if config._device_type is not None and config._device_type.name == "DLA" \
                    and "GPU_FALLBACK" not in flags and network._plugins:
                emit(self._logger, "ERROR", "DLA does not support this layer and GPU fallback is not enabled")
                return None
            precision = network._precision if strongly else "fp32"
            if not strongly:
                if "INT8" in flags and (network._precision == "int8" or config._calibrator is not None):
                    precision = "int8"
                elif "FP16" in flags or (network._precision == "int8" and "INT8" in flags):
                    precision = "fp16"
            if config._calibrator is not None and precision == "int8" and network._precision != "int8":
                cache = config._calibrator.read_calibration_cache()
                header = bytes(cache or b"").split(b"\n", 1)[0].decode("ascii", "replace")
                expected = f"TRT-{version_number(version)}-EntropyCalibration2"  # IInt8EntropyCalibrator2's
                if not cache or header.strip() != expected:
                    # TensorRT ignores a cache written for another version or calibrator and calibrates
                    if config._calibrator.get_batch(["images"]) is None:
                        emit(self._logger, "ERROR", "Calibration failure occurred with no scaling factors detected.")
                        return None
            if getattr(module, "_standin_force_fp32", False):
                precision = "fp32"  # a test asks for the silent-FP32 trap
            profiles = [p._shapes.get("images") for p in config._profiles]
            engine = {"version": version, "io": network._io, "precision": precision, "profiles": profiles,
                      "version_compatible": "VERSION_COMPATIBLE" in flags, "flags": sorted(flags),
                      "dla": config._dla_core if config._device_type is not None else None}
            if config._timing is not None:
                config._timing._entries[f"{precision}:{len(network._io)}"] = 1
            emit(self._logger, "INFO", f"stand-in engine built ({precision})")
            return ENGINE_MAGIC + json.dumps(engine).encode()

    # -- runtime, engine, inspector, context ---------------------------------------------------------------
    @standin("Runtime")
    class Runtime(Strict):
        def __init__(self, logger):
            remember_logger(logger)
            self._logger, self._host_code = logger, False

        engine_host_code_allowed = property(lambda self: self._host_code,
                                            lambda self, value: object.__setattr__(self, "_host_code", bool(value)))

        def deserialize_cuda_engine(self, serialized_engine):
            blob = bytes(serialized_engine)
            if not blob.startswith(ENGINE_MAGIC):
                emit(self._logger, "ERROR", "1: [stdArchiveReader.cpp::StdArchiveReader::32] Error Code 1: "
                                            "Serialization (Serialization assertion magicTagRead == kMAGIC_TAG failed."
                                            "Magic tag does not match)")
                return None
            data = json.loads(blob[len(ENGINE_MAGIC):])
            if data["version_compatible"] and not self._host_code:
                emit(self._logger, "ERROR", "1: [runtime.cpp::deserializeCudaEngine] Error Code 1: Serialization "
                                            "(Cannot deserialize version-compatible engine: engine host code is not "
                                            "allowed; set IRuntime::setEngineHostCodeAllowed(true))")
                return None
            if data["version"] != version and not data["version_compatible"]:
                emit(self._logger, "ERROR", f"The engine plan file is not compatible with this version of TensorRT, "
                                            f"expecting library version {version} got {data['version']}, please rebuild.")
                return None
            return ICudaEngine(data)

    @standin("EngineInspector")
    class EngineInspector(Strict):
        def __init__(self, data):
            self._data = data

        def get_engine_information(self, format):  # noqa: A002
            return json.dumps(inspector_json(self._data, major, format.name))

    @standin("ICudaEngine")
    class ICudaEngine(Strict):
        def __init__(self, data):
            self._data = data
            self._io = data["io"]

        @property
        def num_io_tensors(self):
            return len(self._io)

        def _tensor(self, name):
            for tensor in self._io:
                if tensor["name"] == name:
                    return tensor
            raise ValueError(f"no tensor {name}")

        def get_tensor_name(self, index):
            return self._io[index]["name"]

        def get_tensor_mode(self, name):
            return enum_value("TensorIOMode", "INPUT" if self._tensor(name)["input"] else "OUTPUT")

        def get_tensor_shape(self, name):
            return tuple(self._tensor(name)["shape"])

        def get_tensor_dtype(self, name):
            return enum_value("DataType", dtype_of[self._tensor(name)["dtype"]])

        def get_tensor_profile_shape(self, name, profile_index):
            profiles = self._data["profiles"]
            if not profiles or profiles[profile_index] is None:
                raise RuntimeError("no optimization profile")
            return [tuple(s) for s in profiles[profile_index]]

        def create_execution_context(self):
            return IExecutionContext(self)

        def create_engine_inspector(self):
            return EngineInspector(self._data)

    @standin("IExecutionContext")
    class IExecutionContext(Strict):
        def __init__(self, engine):
            self._engine, self._addresses, self._shapes, self._calls = engine, {}, {}, []

        def set_input_shape(self, name, shape):
            self._calls.append(("set_input_shape", name, tuple(shape)))
            self._shapes[name] = tuple(shape)
            return True

        def set_tensor_address(self, name, memory):
            self._calls.append(("set_tensor_address", name, int(memory)))
            self._addresses[name] = int(memory)
            return True

        def execute_async_v3(self, stream_handle):
            self._calls.append(("execute_async_v3", int(stream_handle)))
            writer = getattr(module, "_standin_device_writer", None)
            if writer is not None:
                writer(self._engine._io, self._addresses, self._shapes, int(stream_handle))
            return True

    # -- subclassable interfaces (their methods are the user's) -------------------------------------------
    @standin("IProgressMonitor")
    class IProgressMonitor(Strict):
        def __init__(self):
            pass

    @standin("IInt8EntropyCalibrator2")
    class IInt8EntropyCalibrator2(Strict):
        def __init__(self):
            pass

    class StandinModule(types.ModuleType):
        def __getattribute__(self, name):
            value = types.ModuleType.__getattribute__(self, name)  # raises through __getattr__ when absent
            if not name.startswith("_"):
                log.add(None, name)
            return value

    module = StandinModule("tensorrt", f"STAND-IN tensorrt {version} (generated from the real bindings' names)")
    namespace = {"ILogger": ILogger, "Logger": Logger, "Builder": Builder, "OnnxParser": OnnxParser,
                 "Runtime": Runtime, "IProgressMonitor": IProgressMonitor,
                 "IInt8EntropyCalibrator2": IInt8EntropyCalibrator2, "init_libnvinfer_plugins": init_libnvinfer_plugins,
                 "get_plugin_registry": get_plugin_registry, "nptype": nptype}
    namespace.update(enums)
    for name, value in namespace.items():
        if surface.has(None, name):
            setattr(module, name, value)
    module.__version__ = version
    module._standin_surface = surface
    module._standin_access = log
    module._standin_state = state

    def module_getattr(name):
        if name.startswith("_"):
            raise AttributeError(name)
        if surface.has(None, name):
            raise AttributeError(f"stand-in tensorrt {version}: {name} exists in TensorRT {version} but the "
                                 f"stand-in has no behaviour for it (add it to tests/trt_standin)")
        raise missing(None, name)

    module.__getattr__ = module_getattr
    return module


def version_number(version: str) -> int:
    """'10.3.0' -> 100300, '8.6.1' -> 8601: the number TensorRT writes into a calibration cache header."""
    parts = [int(p) for p in version.split(".")[:3]] + [0, 0]
    major, minor, patch = parts[:3]
    return major * 10000 + minor * 100 + patch if major >= 10 else major * 1000 + minor * 100 + patch


def inspector_json(data: dict, major: int, format_name: str) -> dict:
    """IEngineInspector JSON in the layout of the version (see edge_edet/engine/layer_report.py)."""
    if format_name != "JSON":
        raise ValueError("the stand-in inspector speaks JSON only")
    precision = data["precision"]
    if major >= 11:
        word = {"fp32": "Float", "fp16": "Half", "int8": "Int8"}[precision]
        layers = [
            {"Name": "images_cast", "LayerType": "Cast", "Inputs": [{"Name": "images", "DataType": "UInt8"}],
             "Outputs": [{"Name": "x", "DataType": "Float"}]},
            {"Name": "conv0", "LayerType": "CaskConvolution", "Inputs": [{"Name": "x", "DataType": word}],
             "Outputs": [{"Name": "y", "DataType": word if precision != "int8" else "Half"}]},
            {"Name": "nms", "LayerType": "NMS", "Inputs": [{"Name": "y", "DataType": "Float"}],
             "Outputs": [{"Name": "num_detections", "DataType": "Int32"}]}]
        io_key = "I/O Tensors"
        io = [{"Name": t["name"], "IOMode": "Input" if t["input"] else "Output"} for t in data["io"]]
    else:
        fmt = {"fp32": "Row major linear FP32 format", "fp16": "Channel major FP16 format where channel % 8 == 0",
               "int8": "Four wide channel vectorized row major Int8 format"}[precision]
        layers = [
            {"Name": "images_reformat", "LayerType": "Reformat",
             "Inputs": [{"Name": "images", "Format/Datatype": "Row major linear UInt8 format"}],
             "Outputs": [{"Name": "x", "Format/Datatype": "Row major linear FP32 format"}]},
            {"Name": "conv0", "LayerType": "CaskConvolution", "Inputs": [{"Name": "x", "Format/Datatype": fmt}],
             "Outputs": [{"Name": "y", "Format/Datatype": fmt if precision != "int8"
                          else "Channel major FP16 format where channel % 8 == 0"}]},
            {"Name": "nms", "LayerType": "NMS", "Inputs": [{"Name": "y", "Format/Datatype": "Row major linear FP32 format"}],
             "Outputs": [{"Name": "num_detections", "Format/Datatype": "Row major linear Int32 format"}]}]
        io_key = "Bindings"
        io = [t["name"] for t in data["io"]]
    return {"Layers": layers, io_key: io}
