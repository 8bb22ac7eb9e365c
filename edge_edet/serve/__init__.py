"""Scale out on NVIDIA Triton Inference Server: `edge-edet serve` (PyTriton) and `edge-edet triton-repo`
(a standard model repository for the full server).  Clients use the runtime's triton:// back-end.

Above the runtime in the floors: it runs the model through `edge_edet.runtime` back-ends.
"""
