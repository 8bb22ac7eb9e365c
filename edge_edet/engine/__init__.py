"""TensorRT engine building for TensorRT 8.5, 10.x and 11.x, on the machine that runs the engine.

    from edge_edet.engine.builder import build_engine
    from edge_edet.engine.plan import BuildOptions
    result = build_engine(BuildOptions(onnx="d1.onnx", engine="d1.trt", precision="fp16"))

Modules, one job each:
  versions.py     what each TensorRT generation can do (DLA, flags, calibrators, progress monitor)
  graph.py        what the ONNX carries (ours?, precision from Q/DQ / float16, dynamic batch, plugins)
  plan.py         every build decision as plain data, refusals included (tested without TensorRT)
  builder.py      applies a plan through the TensorRT API, proves the precision, writes engine + sidecar
  layer_report.py per-layer precision from IEngineInspector JSON (8.5/10.x and 11.x schemas)
  calibrator.py   legacy IInt8EntropyCalibrator2 serving a calibration cache (8.5 / 10.x only)
(the machine probe and the process's one TensorRT logger live in the contract floor:
edge_edet/contract/machine.py and edge_edet/contract/trt_logging.py)

Which TensorRT names the builder and the back-end use, and which versions have them (8.6.1,
10.3, 10.7, 10.13, 11.0, 11.4), is docs/tensorrt_api.md, generated from the real TensorRT
bindings by `python scripts/trt_api_table.py`; tests/test_trt_conformance.py runs the flows
against a strict stand-in of each of those versions.

The precision flags are looked up by name (`enum_member`) and a missing one is an error, never
skipped: the `hasattr` guard that silently builds FP32 on TensorRT 11 cannot happen here, and the
inspector's layer report must show the requested precision or the engine is not written.
"""
