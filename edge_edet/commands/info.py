"""`edge-edet info`: a model's table row, parameters, multiply-adds, anchors and output shapes."""
from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("info", help="show a model's config row, parameters, multiply-adds and anchors")
    p.add_argument("model", help="d0..d7, d7x, lite0..lite4")
    p.add_argument("--input-size", default=None, help="512 or HEIGHTxWIDTH (default: the model's)")
    p.add_argument("--num-classes", type=int, default=90)
    p.set_defaults(func=run)


def run(args) -> int:
    import dataclasses

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ..contract.anchors import generate_anchors
    from ..contract.config import get_config, paper_formula
    from ..model.efficientdet import EfficientDet

    cfg = get_config(args.model, num_classes=args.num_classes, input_size=args.input_size)
    row = dataclasses.asdict(cfg)
    row.pop("coco_url")
    print(f"{cfg.name}: " + ", ".join(f"{k}={v}" for k, v in row.items() if k != "name"))
    if cfg.name.startswith("d") and cfg.name[1:].isdigit():
        formula = paper_formula(int(cfg.name[1:]))
        print("paper formula: " + ", ".join(f"{k}={v:.1f}" if isinstance(v, float) else f"{k}={v}"
                                            for k, v in formula.items()))
    with torch.device("meta"):
        model = EfficientDet(cfg).eval()
        x = torch.zeros((1, 3) + tuple(cfg.input_size))
        with FlopCounterMode(display=False) as counter:
            class_out, box_out = model(x)
    params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {params:,}")
    print(f"multiply-adds: {counter.get_total_flops() / 2e9:.2f} G at {cfg.input_size[0]}x{cfg.input_size[1]}")
    print(f"anchors: {generate_anchors(cfg).shape[0]:,} ({cfg.num_anchors} per location)")
    for level, (c, b) in zip(range(cfg.min_level, cfg.max_level + 1), zip(class_out, box_out)):
        print(f"  P{level}: class {tuple(c.shape)}  box {tuple(b.shape)}")
    return 0


def main(argv=None, prog=None) -> int:
    from . import command_main

    return command_main(__import__(__name__, fromlist=["register"]), argv, prog)
