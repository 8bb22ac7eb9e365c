"""COCO evaluation (pycocotools), shared by `edge-edet eval` and training's per-epoch AP."""
