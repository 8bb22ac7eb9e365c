"""`edge-edet info`: a model's table row, parameters, multiply-adds, anchors and output shapes."""
from __future__ import annotations

from ..contract.cli import positive_int


def register(sub) -> None:
    p = sub.add_parser("info", help="show a model's config row, parameters, multiply-adds and anchors")
    p.add_argument("model", help="d0..d7, d7x, lite0..lite4")
    p.add_argument("--input-size", default=None, help="512 or HEIGHTxWIDTH (default: the model's)")
    p.add_argument("--num-classes", type=positive_int, default=90)
    p.set_defaults(func=run)


def conv_multiply_adds(model, x) -> int:
    """Multiply-adds of every convolution in one forward pass on `x` (meta tensors: shapes only).

    Forward hooks instead of torch's FlopCounterMode: same total for EfficientDet (all its
    arithmetic is convolutions), a fraction of the time."""
    import torch

    total = [0]

    def count(module, _inputs, output):
        total[0] += output.numel() * (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]

    handles = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        outputs = model(x)
    finally:
        for handle in handles:
            handle.remove()
    return total[0], outputs


def run(args) -> int:
    import dataclasses

    from ..contract.anchors import generate_anchors
    from ..contract.config import get_config, paper_formula

    # the name and size are checked before torch is imported: a typo costs milliseconds
    cfg = get_config(args.model, num_classes=args.num_classes, input_size=args.input_size)

    import torch

    from ..model.efficientdet import EfficientDet

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
        macs, (class_out, box_out) = conv_multiply_adds(model, x)
    params = sum(p.numel() for p in model.parameters())
    print(f"parameters: {params:,}")
    print(f"multiply-adds: {macs / 1e9:.2f} G at {cfg.input_size[0]}x{cfg.input_size[1]}")
    print(f"anchors: {generate_anchors(cfg).shape[0]:,} ({cfg.num_anchors} per location)")
    for level, (c, b) in zip(range(cfg.min_level, cfg.max_level + 1), zip(class_out, box_out)):
        print(f"  P{level}: class {tuple(c.shape)}  box {tuple(b.shape)}")
    return 0


def main(argv=None, prog=None) -> int:
    from . import command_main

    return command_main(__import__(__name__, fromlist=["register"]), argv, prog)
