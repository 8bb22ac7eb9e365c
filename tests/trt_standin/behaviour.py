"""What the stand-in TensorRT objects do: the least the project's flows need, nothing more.

Each class here is named after the TensorRT class it gives behaviour to, and each method takes the
parameters of the real signature (same names: the generator checks them against the recorded
overloads and refuses a mismatch).  A TensorRT method without an entry here exists in the stand-in
(its signature is checked) but raises NotImplementedError when called.

  * OnnxParser reads the graph's I/O, Q/DQ nodes, float16 marks and plugin ops with the onnx package;
  * Builder.build_serialized_network returns an IHostMemory describing the engine: its I/O and the
    precision TensorRT would give the layers (strongly typed: the graph's types, float16 compute
    included; weakly typed: from the FP16 / INT8 flags and the calibrator's cache);
  * the inspector answers JSON in the version's layout (8.x / 10.x "Format/Datatype", 11.x "DataType");
  * the execution context enqueues a "kernel" on the stand-in GPU's stream (cuda_module.py), which
    writes one detection per image when the stream is synchronized.
"""
from __future__ import annotations

import array
import json

import numpy as np

from .stubs import version_number  # TensorRT's release number: its calibration cache header carries it

ENGINE_MAGIC = b"EDGE_EDET_STANDIN_ENGINE\n"
TIMING_MAGIC = b"EDGE_EDET_STANDIN_TIMING\n"
DTYPE_NAMES = {"uint8": "UINT8", "float32": "FLOAT", "float16": "HALF", "int32": "INT32", "int8": "INT8",
               "int64": "INT64", "bool": "BOOL"}


def make_behaviours(ctx):
    """{TensorRT class name: behaviour class} for the stand-in of ctx.version."""
    version, state = ctx.version, ctx.state
    major = int(version.split(".")[0])

    def enum(name, member):
        return type.__getattribute__(ctx.classes[name], "__members__")[member]

    def severity(member):
        return enum("ILogger.Severity", member)

    def emit(logger, level, text):
        target = state["global_logger"] or logger
        target.log(severity(level), text)

    def remember_logger(logger):
        if state["global_logger"] is None:  # TensorRT keeps the first logger it is given, process-wide
            state["global_logger"] = logger

    def flag(name):
        return getattr(ctx.module, f"_standin_{name}", False)

    def host_memory(data: bytes):
        memory = ctx.new("IHostMemory")
        array.array.frombytes(memory, data)
        return memory

    def dims(shape):
        return ctx.new("Dims", _shape=[int(d) for d in shape])

    class Dims:
        def __init__(self, shape=()):
            object.__setattr__(self, "_shape", [int(d) for d in shape])

        def __len__(self):
            return len(self._shape)

        def __getitem__(self, arg0):
            if isinstance(arg0, slice):
                return tuple(self._shape[arg0])
            if not -len(self._shape) <= arg0 < len(self._shape):
                raise IndexError("Out of bounds")  # what lets tuple(dims) and `for d in dims` stop
            return self._shape[arg0]

        def __setitem__(self, arg0, arg1):
            self._shape[arg0] = arg1

        def __eq__(self, arg0):
            return list(self._shape) == list(arg0)

        def __repr__(self):
            return f"({', '.join(str(d) for d in self._shape)})"

        __str__ = __repr__

    class Logger:
        def __init__(self, min_severity=None):
            object.__setattr__(self, "_min", min_severity)

        def log(self, severity, msg):
            return None

    class IPluginCreator:
        name = property(lambda self: self._name)

    class IPluginRegistry:
        all_creators = property(lambda self: [ctx.new("IPluginCreator", _name=p) for p in ctx.plugins])
        plugin_creator_list = property(lambda self: [ctx.new("IPluginCreator", _name=p) for p in ctx.plugins])

    class Builder:
        def __init__(self, logger):
            remember_logger(logger)
            object.__setattr__(self, "_logger", logger)

        num_DLA_cores = property(lambda self: ctx.dla_cores)

        def create_network(self, flags=0):
            return ctx.new("INetworkDefinition", _flags=int(flags), _io=[], _precision="fp32", _fp16_compute=False,
                           _plugins=[])

        def create_builder_config(self):
            return ctx.new("IBuilderConfig", _flags=set(), _profiles=[], _calibrator=None, _monitor=None,
                           _timing=None, _device_type=None, _dla_core=None)

        def create_optimization_profile(self):
            return ctx.new("IOptimizationProfile", _shapes={})

        def build_serialized_network(self, network, config, kernel_text=None):
            return build(self._logger, network, config)

    def build(logger, network, config):
        flags = set(config._flags)
        strongly = major >= 11 or "STRONGLY_TYPED" in network_flags(network)
        if config._monitor is not None:
            monitor = config._monitor
            for phase, steps in (("Building engine", 2), ("Optimizing", 3)):
                monitor.phase_start(phase, None, steps)
                for step in range(steps):
                    if monitor.step_complete(phase, step) is False:
                        emit(logger, "ERROR", "Build cancelled by the progress monitor")
                        return None
                monitor.phase_finish(phase)
        if any(-1 in t["shape"] for t in network._io if t["input"]) and not config._profiles:
            emit(logger, "ERROR", "Network has dynamic or shape inputs, but no optimization profile has been defined.")
            return None
        if config._device_type is not None and config._device_type._name == "DLA" \
                and "GPU_FALLBACK" not in flags and network._plugins:
            emit(logger, "ERROR", "DLA does not support this layer and GPU fallback is not enabled")
            return None
        precision, fp16 = (network._precision, network._fp16_compute) if strongly else ("fp32", False)
        if not strongly:
            if "INT8" in flags and (network._precision == "int8" or config._calibrator is not None):
                precision, fp16 = "int8", "FP16" in flags
            elif "FP16" in flags or (network._precision == "int8" and "INT8" in flags):
                precision = "fp16"
        if config._calibrator is not None and precision == "int8" and network._precision != "int8":
            cache = config._calibrator.read_calibration_cache()
            header = bytes(cache or b"").split(b"\n", 1)[0].decode("ascii", "replace")
            if not cache or header.strip() != f"TRT-{version_number(version)}-EntropyCalibration2":
                # TensorRT ignores a cache written for another version or calibrator and asks for images
                if config._calibrator.get_batch(["images"]) is None:
                    emit(logger, "ERROR", "Calibration failure occurred with no scaling factors detected.")
                    return None
        if flag("force_fp32"):
            precision, fp16 = "fp32", False  # a test asks for the silent-FP32 trap
        if flag("drop_fp16_compute"):
            fp16 = False  # a test asks for an INT8 engine whose float layers came out FP32
        engine = {"version": version, "io": network._io, "precision": precision, "fp16_compute": fp16,
                  "profiles": [p._shapes.get("images") for p in config._profiles],
                  "version_compatible": "VERSION_COMPATIBLE" in flags, "flags": sorted(flags),
                  "dla": config._dla_core if config._device_type is not None else None}
        if config._timing is not None:
            config._timing._entries[f"{precision}:{len(network._io)}"] = 1
        emit(logger, "INFO", f"stand-in engine built ({precision})")
        return host_memory(ENGINE_MAGIC + json.dumps(engine).encode())

    def network_flags(network):
        members = type.__getattribute__(ctx.classes["NetworkDefinitionCreationFlag"], "__members__")
        return {name for name, member in members.items() if network._flags & (1 << int(member))}

    class INetworkDefinition:
        num_inputs = property(lambda self: sum(1 for t in self._io if t["input"]))
        num_outputs = property(lambda self: sum(1 for t in self._io if not t["input"]))

    class ParserError:
        def desc(self):
            return self._text

    class OnnxParser:
        def __init__(self, network, logger):
            for key, value in dict(_network=network, _logger=logger, _errors=[]).items():
                object.__setattr__(self, key, value)

        def parse_from_file(self, model):
            import onnx
            from onnx import TensorProto

            graph = onnx.load(model, load_external_data=False).graph
            names = {TensorProto.UINT8: "uint8", TensorProto.FLOAT: "float32", TensorProto.FLOAT16: "float16",
                     TensorProto.INT32: "int32", TensorProto.INT64: "int64", TensorProto.INT8: "int8"}
            io = []
            for value, is_input in [(v, True) for v in graph.input] + [(v, False) for v in graph.output]:
                tensor = value.type.tensor_type
                shape = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in tensor.shape.dim)
                io.append({"name": value.name, "input": is_input, "shape": shape,
                           "dtype": names.get(tensor.elem_type, "float32")})
            ops = {n.op_type for n in graph.node}
            for op in sorted(ops):
                if op.endswith("_TRT") and op not in ctx.plugins:
                    self._errors.append(f"No importer registered for op: {op}. Attempting to import as plugin.")
                    emit(self._logger, "ERROR", f"getPluginCreator could not find plugin: {op} version: 1")
                    return False
            has_fp16 = any(t.data_type == TensorProto.FLOAT16 for t in graph.initializer) or any(
                n.op_type == "Cast" and any(a.name == "to" and a.i == TensorProto.FLOAT16 for a in n.attribute)
                for n in graph.node)
            network = self._network
            network._io = io
            quantized = bool({"QuantizeLinear", "DequantizeLinear"} & ops)
            network._precision = "int8" if quantized else ("fp16" if has_fp16 else "fp32")
            network._fp16_compute = quantized and fp16_scales(graph)
            network._plugins = sorted(op for op in ops if op.endswith("_TRT"))
            return True

        num_errors = property(lambda self: len(self._errors))

        def get_error(self, index):
            return ctx.new("ParserError", _text=self._errors[index])

    def fp16_scales(graph):
        """A Q/DQ graph whose DequantizeLinear scales are float16 computes in FP16 around its INT8 layers."""
        from onnx import TensorProto

        halves = {t.name for t in graph.initializer if t.data_type == TensorProto.FLOAT16}
        return any(n.op_type == "DequantizeLinear" and len(n.input) > 1 and n.input[1] in halves for n in graph.node)

    class IOptimizationProfile:
        def set_shape(self, input, min, opt, max):  # noqa: A002 (TensorRT's parameter names)
            self._shapes[input] = (tuple(min), tuple(opt), tuple(max))

    class ITimingCache:
        def serialize(self):
            if flag("timing_serialize_fails"):
                raise RuntimeError("ITimingCache::serialize failed (stand-in told to fail)")
            return host_memory(TIMING_MAGIC + json.dumps({"device": self._device, "entries": self._entries}).encode())

    class IHostMemory:
        nbytes = property(lambda self: len(memoryview(self)))
        dtype = property(lambda self: enum("DataType", "UINT8"))

    def read_timing(blob):
        data = bytes(memoryview(blob))
        if not data:
            return ctx.new("ITimingCache", _entries={}, _device="standin-gpu")
        if not data.startswith(TIMING_MAGIC):
            return None  # TensorRT: "createTimingCache: corrupt or incompatible" -> nullptr -> None
        parsed = json.loads(data[len(TIMING_MAGIC):])
        return ctx.new("ITimingCache", _entries=dict(parsed["entries"]), _device=parsed["device"])

    def settable(attribute):
        return property(lambda self: getattr(self, attribute),
                        lambda self, value: object.__setattr__(self, attribute, value))

    class IBuilderConfig:
        def set_memory_pool_limit(self, pool, pool_size):
            return None

        def set_flag(self, flag):
            self._flags.add(flag._name)

        def add_optimization_profile(self, profile):
            self._profiles.append(profile)
            return len(self._profiles) - 1

        def set_calibration_profile(self, profile):
            return True

        def create_timing_cache(self, serialized_timing_cache):
            return read_timing(serialized_timing_cache)

        def set_timing_cache(self, cache, ignore_mismatch):
            if cache._device != "standin-gpu" and not ignore_mismatch:
                return False  # a cache from another device / TensorRT version
            object.__setattr__(self, "_timing", cache)
            return True

        def get_timing_cache(self):
            return self._timing

        profiling_verbosity = settable("_verbosity")
        int8_calibrator = settable("_calibrator")
        default_device_type = settable("_device_type")
        DLA_core = settable("_dla_core")
        hardware_compatibility_level = settable("_hardware")
        progress_monitor = settable("_monitor")

    class Runtime:
        def __init__(self, logger):
            remember_logger(logger)
            for key, value in dict(_logger=logger, _host_code=False, _dla_core=-1).items():
                object.__setattr__(self, key, value)

        engine_host_code_allowed = settable("_host_code")
        DLA_core = settable("_dla_core")

        def deserialize_cuda_engine(self, serialized_engine):
            blob = bytes(memoryview(serialized_engine))
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
            return ctx.new("ICudaEngine", _data=dict(data, loaded_on_dla_core=self._dla_core), _io=data["io"])

    class EngineInspector:
        def get_engine_information(self, format):  # noqa: A002
            return json.dumps(inspector_json(self._data, major, format._name))

    class ICudaEngine:
        num_io_tensors = property(lambda self: len(self._io))

        def get_tensor_name(self, index):
            return self._io[index]["name"]

        def get_tensor_mode(self, name):
            return enum("TensorIOMode", "INPUT" if tensor(self, name)["input"] else "OUTPUT")

        def get_tensor_shape(self, name):
            return dims(tensor(self, name)["shape"])

        def get_tensor_dtype(self, name):
            return enum("DataType", DTYPE_NAMES[tensor(self, name)["dtype"]])

        def get_tensor_profile_shape(self, name, profile_index):
            profiles = self._data["profiles"]
            if not profiles or profiles[profile_index] is None:
                raise RuntimeError("no optimization profile")
            return [dims(s) for s in profiles[profile_index]]

        def create_execution_context(self, strategy=None, runtime_config=None):
            return ctx.new("IExecutionContext", _engine=self, _addresses={}, _shapes={}, _calls=[])

        def create_engine_inspector(self):
            return ctx.new("EngineInspector", _data=self._data)

    def tensor(engine, name):
        for entry in engine._io:
            if entry["name"] == name:
                return entry
        raise ValueError(f"no tensor {name}")

    class IExecutionContext:
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
            gpu = getattr(ctx.module, "_standin_gpu", None)
            if gpu is None:
                raise RuntimeError("stand-in tensorrt: no stand-in GPU attached (tests/trt_standin/cuda_module.py)")
            if gpu.fail_enqueue_while_capturing and gpu.capturing(int(stream_handle)):
                emit(state["global_logger"], "ERROR", "IExecutionContext::enqueueV3: Error Code 1: Cuda Runtime "
                                                      "(operation not permitted when stream is capturing)")
                return False
            io, addresses, shapes = self._engine._io, dict(self._addresses), dict(self._shapes)
            gpu.enqueue(int(stream_handle), lambda: detection_kernel(gpu.memory, io, addresses, shapes))
            return True

    return {cls.__name__: cls for cls in (
        Dims, Logger, IPluginCreator, IPluginRegistry, Builder, INetworkDefinition, ParserError, OnnxParser,
        IOptimizationProfile, ITimingCache, IHostMemory, IBuilderConfig, Runtime, EngineInspector, ICudaEngine,
        IExecutionContext)}


def module_behaviour(ctx):
    """The module-level functions (init_libnvinfer_plugins, get_plugin_registry, nptype)."""
    registry = {}

    class Module:
        @staticmethod
        def init_libnvinfer_plugins(logger, namespace):
            ctx.state["plugin_logger"] = logger  # TensorRT keeps this pointer for the life of the process
            return True

        @staticmethod
        def get_plugin_registry():
            if "registry" not in registry:
                registry["registry"] = ctx.new("IPluginRegistry")
            return registry["registry"]

        @staticmethod
        def nptype(trt_type):
            names = {value: key for key, value in DTYPE_NAMES.items()}
            return np.dtype(names[trt_type._name]).type

    return Module


def detection_kernel(memory, io, addresses, shapes):
    """The stand-in engine's 'kernel': one detection per image; its score is the input's mean / 255."""
    images = next(t for t in io if t["input"])
    shape = shapes.get(images["name"], tuple(images["shape"]))
    batch = int(shape[0])
    pixels = memory[addresses[images["name"]]][: int(np.prod(shape))].reshape(shape)
    for entry in io:
        if entry["input"]:
            continue
        out = np.zeros((batch,) + tuple(entry["shape"][1:]), entry["dtype"])
        if entry["name"] == "num_detections":
            out[:] = 1
        elif entry["name"] == "detection_boxes":
            out[:, 0] = (1.0, 2.0, 10.0, 20.0)
        elif entry["name"] == "detection_scores":
            out[:, 0] = pixels.reshape(batch, -1).mean(axis=1) / 255.0  # depends on the input: proves the copy in
        raw = out.view(np.uint8).reshape(-1)
        memory[addresses[entry["name"]]][: raw.size] = raw


def inspector_json(data: dict, major: int, format_name: str) -> dict:
    """IEngineInspector JSON in the layout of the version (see edge_edet/engine/layer_report.py)."""
    if format_name != "JSON":
        raise ValueError("the stand-in inspector speaks JSON only")
    precision = data["precision"]
    between = "fp16" if data.get("fp16_compute") or precision == "fp16" else "fp32"  # the layers around INT8 ones
    if major >= 11:
        word = {"fp32": "Float", "fp16": "Half", "int8": "Int8"}
        layers = [
            {"Name": "images_cast", "LayerType": "Cast", "Inputs": [{"Name": "images", "DataType": "UInt8"}],
             "Outputs": [{"Name": "x", "DataType": "Float"}]},
            {"Name": "conv0", "LayerType": "CaskConvolution", "Inputs": [{"Name": "x", "DataType": word[precision]}],
             "Outputs": [{"Name": "y", "DataType": word[precision if precision != "int8" else between]}]},
            {"Name": "swish0", "LayerType": "PointWise", "Inputs": [{"Name": "y", "DataType": word[between]}],
             "Outputs": [{"Name": "z", "DataType": word[between]}]},
            {"Name": "nms", "LayerType": "NMS", "Inputs": [{"Name": "z", "DataType": "Float"}],
             "Outputs": [{"Name": "num_detections", "DataType": "Int32"}]}]
        return {"Layers": layers, "I/O Tensors": [{"Name": t["name"], "IOMode": "Input" if t["input"] else "Output"}
                                                  for t in data["io"]]}
    fmt = {"fp32": "Row major linear FP32 format", "fp16": "Channel major FP16 format where channel % 8 == 0",
           "int8": "Four wide channel vectorized row major Int8 format"}
    layers = [
        {"Name": "images_reformat", "LayerType": "Reformat",
         "Inputs": [{"Name": "images", "Format/Datatype": "Row major linear UInt8 format"}],
         "Outputs": [{"Name": "x", "Format/Datatype": "Row major linear FP32 format"}]},
        {"Name": "conv0", "LayerType": "CaskConvolution", "Inputs": [{"Name": "x", "Format/Datatype": fmt[precision]}],
         "Outputs": [{"Name": "y", "Format/Datatype": fmt[precision if precision != "int8" else between]}]},
        {"Name": "swish0", "LayerType": "PointWise", "Inputs": [{"Name": "y", "Format/Datatype": fmt[between]}],
         "Outputs": [{"Name": "z", "Format/Datatype": fmt[between]}]},
        {"Name": "nms", "LayerType": "NMS", "Inputs": [{"Name": "z", "Format/Datatype": "Row major linear FP32 format"}],
         "Outputs": [{"Name": "num_detections", "Format/Datatype": "Row major linear Int32 format"}]}]
    return {"Layers": layers, "Bindings": [t["name"] for t in data["io"]]}
