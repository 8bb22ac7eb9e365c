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
  environment.py  TensorRT / GPU / pycuda / ONNX Runtime / OpenCV probes (`edge-edet doctor`)
  trt_logging.py  an ILogger that keeps errors so failures are explained in one sentence

TensorRT calls used by the builder, and the versions whose documentation shows them (8.5 =
docs.nvidia.com/deeplearning/tensorrt/archives/tensorrt-853 (8.5.3) pages, or 8.4.3/8.6.1 pages
where the 8.5 page was not available, noted; 10.x = the TensorRT 10 Python/C++ API and the
"Migrating from TensorRT 8.x to 10.x" guide; 11.x = TensorRT 11.0-11.4.1 API pages and the
"Migrating from TensorRT 10.x to 11.x" Python guide and removed-API list):

  call                                                   8.5   10.x  11.x   notes
  trt.__version__                                         yes   yes   yes
  trt.ILogger subclass, log(severity, msg), ILogger.Severity  yes  yes  yes  (8.6.1/latest Logger pages)
  trt.init_libnvinfer_plugins(logger, "")                 yes   yes   yes   kept in 11 (V2 plugins deprecated, not removed)
  trt.get_plugin_registry().plugin_creator_list           yes   yes*  -     *deprecated in 10.0 (getPluginCreatorList)
  trt.get_plugin_registry().all_creators                  -     yes   yes   added in 10.0
  trt.Builder(logger)                                     yes   yes   yes
  Builder.create_network(flags)                           yes   yes   yes
  NetworkDefinitionCreationFlag.EXPLICIT_BATCH            yes   ign.  -     10.x: deprecated and ignored; gone from the 11.0 enum
  NetworkDefinitionCreationFlag.STRONGLY_TYPED            -     yes   dep.  11.0: deprecated, always on, ignored
  trt.OnnxParser(network, logger), parse_from_file(path)  yes   yes   yes   (8.4.3/8.6.1 parser pages)
  OnnxParser.num_errors, get_error(i).desc()              yes   yes   yes
  Builder.create_builder_config()                         yes   yes   yes
  IBuilderConfig.set_memory_pool_limit(WORKSPACE, bytes)  yes   yes   yes   (getMemoryPoolLimit in 8.4.3+ and 11.4.1 member lists)
  IBuilderConfig.set_flag(BuilderFlag.FP16 / INT8)        yes   yes   -     removed in 11.0 ("BuilderFlag.FP16 ... Strong typing with ModelOpt AutoCast")
  BuilderFlag.GPU_FALLBACK                                yes   yes   yes   DLA builds
  BuilderFlag.VERSION_COMPATIBLE                          -     yes   yes   added in 8.6
  IBuilderConfig.hardware_compatibility_level (AMPERE_PLUS) -   yes   yes   added in 8.6 (getHardwareCompatibilityLevel in 10.14/11.4.1 lists)
  IBuilderConfig.int8_calibrator                          yes   dep.  -     deprecated 10.1, removed 11.0
  IBuilderConfig.set_calibration_profile(profile)         yes   yes   -     removed 11.0
  trt.IInt8EntropyCalibrator2: get_batch_size, get_batch,
      read_calibration_cache, write_calibration_cache     yes   dep.  -     (8.6.1 member list; 10.x deprecated)
  IBuilderConfig.profiling_verbosity = DETAILED           yes   yes   yes   (EngineInspector pages: 8.5.3, 11.4.0)
  IBuilderConfig.default_device_type = DeviceType.DLA,
      IBuilderConfig.DLA_core, Builder.num_DLA_cores      yes   <=10.7 11.4.1+ "10.7 was the last release that supported DLA"; 11.4.1 with JetPack 7.2.2
  IBuilderConfig.create_timing_cache(bytes),
      set_timing_cache(cache, ignore_mismatch), get_timing_cache(),
      ITimingCache.serialize()                            yes   yes   yes   (createTimingCache in 8.4.3 and 11.4.1 member lists)
  Builder.create_optimization_profile(),
      IOptimizationProfile.set_shape(name, min, opt, max),
      IBuilderConfig.add_optimization_profile(profile)    yes   yes   yes   (IOptimizationProfile 8.2.5/10.2/11.4.0 pages)
  trt.IProgressMonitor: phase_start, step_complete,
      phase_finish; IBuilderConfig.progress_monitor        -     yes   yes   added in 10.0 (C++ 10.0.1 and 11.3.0 pages); 8.5 gets a heartbeat
  Builder.build_serialized_network(network, config)       yes   yes   yes   returns None on failure; errors only in the logger
  trt.Runtime(logger).deserialize_cuda_engine(bytes)      yes   yes   yes   (Runtime 8.4.3/8.6/latest pages)
  ICudaEngine.create_engine_inspector(),
      IEngineInspector.get_engine_information(LayerInformationFormat.JSON)
                                                          yes   yes   yes   11.x JSON: "Bindings" -> "I/O Tensors", per-tensor "DataType" split out
  Builder.platform_has_fast_fp16                          (not used: removed in 11.0)

The precision flags are looked up by name (`enum_member`) and a missing one is an error, never
skipped: the `hasattr` guard that silently builds FP32 on TensorRT 11 cannot happen here, and the
inspector's layer report must show the requested precision or the engine is not written.
"""
