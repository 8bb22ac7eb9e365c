"""The training loop: data, model, AdamW with warm-up + cosine, gradient clipping, EMA, per-epoch COCO AP
on the validation set (the eval module's scoring), `best.pth`/`last.pth`, CSV log, resume.

BatchNorm at small batch sizes: the backbone's BatchNorm layers keep their ImageNet statistics
(held in eval mode; their scale and shift still learn), while the freshly initialised BiFPN and
head BatchNorms train normally.  Optionally the stem and first stages are frozen outright
(`freeze_stages`): they run at the highest resolutions, so skipping their backward saves CPU time.
"""
from __future__ import annotations

import csv
import io
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from typing import List, Optional, Sequence

import torch

from ..contract.anchors import generate_anchors
from ..contract.config import get_config
from ..contract.errors import EdgeEdetError
from ..contract.fileio import remove_stale_partials, write_text_atomic
from ..contract.machine import TRAINING_BYTES_PER_PIXEL, check_count_fits_memory
from ..eval.coco import STAT_NAMES, detections_to_coco, evaluate, label_to_category, load_coco
from ..model import create_model, flatten_outputs
from ..model.reference import reference_detect
from .checkpoint import load_run_checkpoint, save_atomic
from .dataset import DetectionDataset, category_labels, read_coco
from .ema import ModelEma
from .loss import detection_loss
from .progress import TrainProgress
from .schedule import lr_factor

LOG_FIELDS = ("epoch", "train_loss", "cls_loss", "box_loss", "lr", "AP", "AP50", "AP75", "seconds")


@dataclass
class TrainOptions:
    model: str
    train_images: str
    train_annotations: str
    val_images: str
    val_annotations: str
    output: str
    epochs: int = 20
    batch_size: int = 8
    lr: float = 1e-3
    weight_decay: float = 1e-2
    warmup_epochs: float = 1.0
    input_size: Optional[str] = None
    init: str = "imagenet"
    resume: bool = False
    workers: int = 1
    device: str = "cpu"
    threads: Optional[int] = None
    ema_decay: float = 0.999
    clip_grad: float = 10.0
    scale_min: float = 0.1
    scale_max: float = 2.0
    freeze_stages: int = 0
    freeze_backbone_bn: bool = True
    classes: Optional[List[str]] = None
    eval_batch_size: int = 16
    eval_every: int = 1
    max_val_images: Optional[int] = None  # validate on the first N images (short budgets)
    max_minutes: Optional[float] = None  # wall-clock budget of the whole run, validation included
    log_every: int = 20  # progress: one line per this many steps when stdout is not a terminal
    max_steps_per_epoch: Optional[int] = None  # for smoke runs
    seed: int = 0
    progress: bool = True


def resolve_device(name: str) -> torch.device:
    if name == "cuda" and not torch.cuda.is_available():
        raise EdgeEdetError("--device cuda was asked for but PyTorch sees no CUDA device; use --device cpu")
    if name not in ("cpu", "cuda"):
        raise EdgeEdetError(f"--device must be cpu or cuda, not {name}")
    return torch.device(name)


def build_model(options: TrainOptions, num_classes: int):
    """A detector for `num_classes` with the initialisation asked for (imagenet, coco, a path or none)."""
    init = options.init
    if init in ("imagenet", "none", ""):
        return create_model(options.model, num_classes=num_classes, input_size=options.input_size,
                            pretrained_backbone="imagenet" if init == "imagenet" else None)
    if init == "coco" or not os.path.isfile(init):
        if init != "coco":
            raise EdgeEdetError(f"--init must be imagenet, coco, none or an existing weights file, not {init}")
        return create_model(options.model, num_classes=num_classes, input_size=options.input_size, checkpoint="coco")
    from ..model.weights import read_state_file

    if any(k.startswith("_blocks.") or k.startswith("blocks.") for k in read_state_file(init)):
        return create_model(options.model, num_classes=num_classes, input_size=options.input_size,
                            pretrained_backbone=init)  # an ImageNet backbone file
    return create_model(options.model, num_classes=num_classes, input_size=options.input_size, checkpoint=init)


def freeze(model, stages: int, backbone_bn: bool) -> None:
    """Stop gradients into the stem and the first `stages` backbone stages."""
    if stages > 0:
        backbone = model.backbone
        for module in [backbone.conv_stem, backbone.bn1] + list(backbone.blocks[:stages]):
            for param in module.parameters():
                param.requires_grad_(False)


def set_train_mode(model, backbone_bn_frozen: bool) -> None:
    model.train()
    if backbone_bn_frozen:
        for module in model.backbone.modules():
            if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
                module.eval()


def make_optimizer(model, lr: float, weight_decay: float) -> torch.optim.Optimizer:
    """AdamW; no weight decay on biases, BatchNorm and fusion weights (1-D tensors)."""
    decay, no_decay = [], []
    for param in model.parameters():
        if param.requires_grad:
            (no_decay if param.ndim <= 1 else decay).append(param)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def _loader(dataset, batch_size: int, shuffle: bool, workers: int, seed: int, drop_last: bool):
    generator = torch.Generator()
    generator.manual_seed(seed)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, num_workers=workers,
                                       drop_last=drop_last, generator=generator,
                                       persistent_workers=False)


@torch.no_grad()
def evaluate_model(model, dataset: DetectionDataset, coco, labels: Sequence[str], batch_size: int = 16,
                   workers: int = 0, device=torch.device("cpu"), score_threshold: float = 0.001,
                   progress: bool = False) -> dict:
    """COCO stats of `model` on `dataset` (eval transform) via the reference post-processing and the
    eval module's pycocotools scoring; boxes are mapped back to the original image pixels."""
    class_to_category = label_to_category(labels, coco)
    if not class_to_category:
        raise EdgeEdetError("none of the model's classes (" + ", ".join(labels) + ") appear in the validation "
                            "annotations' categories")
    model.eval()
    rows, image_ids = [], []
    loader = _loader(dataset, batch_size, False, workers, 0, False)
    for images, ids, scales in _progress(loader, "eval", progress):
        results = reference_detect(model, images.to(device).float(), pre_nms_top_k=1000,
                                   score_threshold=score_threshold)
        for (boxes, scores, classes), image_id, scale in zip(results, ids.tolist(), scales.tolist()):
            rows.extend(detections_to_coco(image_id, boxes / scale, scores, classes, class_to_category))
            image_ids.append(image_id)
    return evaluate(coco, rows, image_ids)


def _progress(iterable, desc: str, enabled: bool, total: Optional[int] = None):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, total=total, leave=False, dynamic_ncols=True,
                mininterval=0.5 if sys.stderr.isatty() else 30.0)


def _warn(message: Optional[str]) -> None:
    if message:
        print(f"edge-edet: warning: {message}", file=sys.stderr, flush=True)


class CsvLog:
    """One row per epoch; rewritten atomically so an interrupted run never leaves a torn file."""

    def __init__(self, path: str):
        self.path = path
        self.rows = []
        if os.path.isfile(path):
            with open(path, newline="", encoding="utf-8") as handle:
                self.rows = list(csv.DictReader(handle))

    def keep_until(self, epoch: int) -> None:
        self.rows = [row for row in self.rows if int(row["epoch"]) <= epoch]

    def append(self, row: dict) -> None:
        self.rows.append({k: row.get(k, "") for k in LOG_FIELDS})
        text = io.StringIO(newline="")
        writer = csv.DictWriter(text, fieldnames=LOG_FIELDS)
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.path, text.getvalue())


class Trainer:
    """Holds everything a run needs; `fit()` trains, evaluates, checkpoints and logs."""

    def __init__(self, options: TrainOptions, started: Optional[float] = None):
        # the budget counts from `started` (the command's start, torch import included): setup is part of the run
        self.session_start = started or time.time()
        self.step_seconds = 0.0  # the last training step's duration: a step that cannot end in time is not begun
        self.options = options
        if options.epochs < 1:
            raise EdgeEdetError(f"--epochs must be at least 1, got {options.epochs}")
        if options.batch_size < 1:
            raise EdgeEdetError(f"--batch-size must be at least 1, got {options.batch_size}")
        if not (0 < options.scale_min <= options.scale_max):
            raise EdgeEdetError("scale jitter needs 0 < scale-min <= scale-max")
        for flag, value, low in (("--lr", options.lr, 0.0), ("--weight-decay", options.weight_decay, None),
                                 ("--warmup-epochs", options.warmup_epochs, None), ("--ema-decay", options.ema_decay, None)):
            if not math.isfinite(value) or (low is not None and value <= low) or value < 0:
                raise EdgeEdetError(f"{flag} must be a finite positive number, got {value}" if low is not None
                                    else f"{flag} must be a finite number of 0 or more, got {value}")
        if not options.ema_decay < 1:
            raise EdgeEdetError(f"--ema-decay must be below 1, got {options.ema_decay}")
        if options.max_minutes is not None and not (math.isfinite(options.max_minutes) and options.max_minutes > 0):
            raise EdgeEdetError(f"--max-minutes must be a finite number above 0, got {options.max_minutes}")
        height, width = get_config(options.model, input_size=options.input_size).input_size
        check_count_fits_memory("--batch-size", options.batch_size, height * width * TRAINING_BYTES_PER_PIXEL,
                                f"{height}x{width} images trained on at once")
        self.device = resolve_device(options.device)
        if options.threads:
            torch.set_num_threads(options.threads)
        torch.manual_seed(options.seed)
        self.last_path = os.path.join(options.output, "last.pth")
        self.best_path = os.path.join(options.output, "best.pth")
        self._check_output()
        self.labels = self._labels()
        self.cfg = get_config(options.model, num_classes=len(self.labels), input_size=options.input_size)
        anchors = generate_anchors(self.cfg)
        val_records, val_report = read_coco(options.val_annotations, options.val_images, self.labels)
        _warn(val_report.summary())
        if options.max_val_images:
            val_records = val_records[:options.max_val_images]
        self.val_set = DetectionDataset(val_records, self.cfg, anchors, train=False)
        self.model = build_model(options, len(self.labels)).to(self.device)
        self.elapsed_before = 0.0  # seconds spent in earlier sessions of this run (resume)
        self.eval_reserve = 0.0  # seconds kept back from training for the final validation pass
        self.eval_estimate = None
        if self.budget_s:  # first, before the training set is read: a budget too small is refused at once
            self.eval_estimate = self.estimate_eval_seconds(self.model)
            self.reserve_for_eval(self.eval_estimate)
        train_records, report = read_coco(options.train_annotations, options.train_images, self.labels,
                                          need_boxes=True)
        _warn(report.summary())
        self.val_coco = load_coco(options.val_annotations)
        self.train_set = DetectionDataset(train_records, self.cfg, anchors, train=True,
                                          scale_range=(options.scale_min, options.scale_max), seed=options.seed)
        self.steps_per_epoch = len(self.train_set) // options.batch_size or 1
        if options.max_steps_per_epoch:
            self.steps_per_epoch = min(self.steps_per_epoch, options.max_steps_per_epoch)
        self.total_steps = self.steps_per_epoch * options.epochs
        self.warmup_steps = int(round(options.warmup_epochs * self.steps_per_epoch))
        freeze(self.model, options.freeze_stages, options.freeze_backbone_bn)
        self.optimizer = make_optimizer(self.model, options.lr, options.weight_decay)
        self.ema = ModelEma(self.model, options.ema_decay)
        self.start_epoch = 0
        self.step = 0
        self.best_ap = -1.0
        self.out_of_time = False
        self.created_output = not os.path.isdir(options.output)
        os.makedirs(options.output, exist_ok=True)  # only once every check passed: no empty run folders
        remove_stale_partials(options.output)  # checkpoints a killed run (kill -9) was writing
        self.finished_stats: Optional[dict] = None  # --resume of a run that already trained every epoch
        self.log = CsvLog(os.path.join(options.output, "log.csv"))
        if options.resume:
            self._resume()
        else:
            self.log.rows = []

    # -- setup ---------------------------------------------------------------------------------
    def _check_output(self) -> None:
        options = self.options
        if os.path.isfile(options.output):
            raise EdgeEdetError(f"--output {options.output} is a file; give a folder for the run")
        if not options.resume and os.path.isfile(self.last_path):
            raise EdgeEdetError(f"{options.output} already holds a run; pass --resume to continue it "
                                "or choose another --output")
        if options.resume and not os.path.isfile(self.last_path):
            raise EdgeEdetError(f"there is nothing to resume in {options.output} (no last.pth); "
                                "start the run without --resume")

    def _labels(self) -> List[str]:
        available = category_labels(self.options.train_annotations)
        if not self.options.classes:
            return available
        from ..eval.coco import normalise_name

        known = {normalise_name(n) for n in available}
        unknown = [c for c in self.options.classes if normalise_name(c) not in known]
        if unknown:
            raise EdgeEdetError(f"--classes {', '.join(unknown)} not in {self.options.train_annotations} "
                                f"(it has: {', '.join(available)})")
        return list(self.options.classes)

    def _resume(self) -> None:
        state = load_run_checkpoint(self.last_path)
        if state.get("model_name") != self.cfg.name or list(state.get("labels", [])) != self.labels:
            raise EdgeEdetError(f"cannot resume: {self.last_path} trained {state.get('model_name')} on "
                                f"{state.get('labels')}, not {self.cfg.name} on {self.labels}")
        self.model.load_state_dict(state["model"])
        self.ema.module.load_state_dict(state["state_dict_ema"])
        self.ema.updates = int(state["ema_updates"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.start_epoch = int(state["epoch"])
        self.step = int(state["step"])
        self.best_ap = float(state["best_ap"])
        self.elapsed_before = float(state.get("elapsed", 0.0))
        if self.start_epoch >= self.options.epochs:
            self.finished_stats = {k: float(v) for k, v in state.get("stats", {}).items()}
        torch.set_rng_state(state["torch_rng"])
        self.log.keep_until(self.start_epoch)

    def checkpoint_state(self, epoch: int) -> dict:
        return {"model": self.model.state_dict(), "state_dict_ema": self.ema.module.state_dict(),
                "ema_updates": self.ema.updates, "optimizer": self.optimizer.state_dict(), "epoch": epoch,
                "step": self.step, "best_ap": self.best_ap, "elapsed": self.elapsed(), "labels": list(self.labels),
                "model_name": self.cfg.name, "input_size": list(self.cfg.input_size),
                "options": {k: v for k, v in asdict(self.options).items()}, "torch_rng": torch.get_rng_state()}

    # -- loop ----------------------------------------------------------------------------------
    def elapsed(self) -> float:
        return self.elapsed_before + time.time() - self.session_start

    @property
    def budget_s(self) -> Optional[float]:
        return 60.0 * self.options.max_minutes if self.options.max_minutes else None

    def progress(self) -> float:
        """Fraction of the training done: steps, or the training share of the budget (the budget less
        the time kept for the last validation) if that runs out first."""
        fraction = self.step / max(1, self.total_steps)
        if self.budget_s:
            fraction = max(fraction, self.elapsed() / max(1.0, self.budget_s - self.eval_reserve))
        return fraction

    def time_is_up(self) -> bool:
        """True when training must stop so the last validation still ends within the budget."""
        return bool(self.budget_s) and self.elapsed() + self.step_seconds + self.eval_reserve >= self.budget_s

    def estimate_eval_seconds(self, module) -> float:
        """Time of one validation pass, from one timed batch of `module` (the network before its EMA
        copy exists: the weights do not change the time; the first real pass replaces the estimate)."""
        was_training = module.training
        batch = min(len(self.val_set), self.options.eval_batch_size)
        images = torch.utils.data.default_collate([self.val_set[i] for i in range(batch)])[0]
        images = images.to(self.device).float()
        module.eval()
        with torch.no_grad():
            reference_detect(module, images[:1], pre_nms_top_k=1000, score_threshold=0.001)  # warm-up
            started = time.time()
            reference_detect(module, images, pre_nms_top_k=1000, score_threshold=0.001)
        module.train(was_training)
        per_image = (time.time() - started) / batch
        return 1.2 * per_image * len(self.val_set) + 5.0  # image loading, COCO scoring and checkpoints on top

    def reserve_for_eval(self, seconds: float) -> None:
        self.eval_reserve = seconds
        if self.budget_s and self.elapsed() + self.eval_reserve >= self.budget_s:
            fits = int(len(self.val_set) * (self.budget_s / 3) / seconds)
            hint = f" or --max-val-images {fits}" if 1 <= fits < len(self.val_set) else ""
            raise EdgeEdetError(f"--max-minutes {self.options.max_minutes:g} leaves no time to train: setup took "
                                f"{self.elapsed():.0f} s and one validation pass over {len(self.val_set)} images "
                                f"takes about {seconds:.0f} s here; give a larger budget{hint}")

    def set_lr(self) -> float:
        factor = lr_factor(self.step, self.warmup_steps, self.progress())
        for group in self.optimizer.param_groups:
            group["lr"] = self.options.lr * factor
        return self.options.lr * factor

    def train_step(self, images, cls_targets, box_targets) -> dict:
        lr = self.set_lr()
        cls_out, box_out = self.model(images.to(self.device))
        cls, box = flatten_outputs(cls_out, box_out, self.cfg.num_classes)
        losses = detection_loss(cls, box, cls_targets.to(self.device), box_targets.to(self.device))
        if not torch.isfinite(losses["loss"]):
            raise EdgeEdetError(f"the loss became {losses['loss'].item()} at step {self.step}; "
                                "lower --lr or check the annotations")
        self.optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        if self.options.clip_grad:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.options.clip_grad)
        self.optimizer.step()
        self.ema.update(self.model)
        self.step += 1
        return {k: float(v.detach()) for k, v in losses.items()} | {"lr": lr}

    def train_epoch(self, epoch: int) -> dict:
        options = self.options
        set_train_mode(self.model, options.freeze_backbone_bn)
        self.train_set.epoch = epoch
        loader = _loader(self.train_set, options.batch_size, True, options.workers, options.seed + epoch, True)
        sums = {"loss": 0.0, "cls_loss": 0.0, "box_loss": 0.0}
        count = 0
        for images, cls_targets, box_targets in loader:
            if count >= self.steps_per_epoch:
                break
            if self.time_is_up():
                self.out_of_time = True
                break
            step_started = time.time()
            result = self.train_step(images, cls_targets, box_targets)
            self.step_seconds = time.time() - step_started
            for key in sums:
                sums[key] += result[key]
            count += 1
            self.bar.update(self.step, epoch + 1, options.epochs, sums["loss"] / count, result["lr"], self.elapsed())
        return {key: value / max(count, 1) for key, value in sums.items()} | {"lr": self.set_lr()}

    def evaluate(self) -> dict:
        started = time.time()
        self.bar.close()
        stats = evaluate_model(self.ema.module, self.val_set, self.val_coco, self.labels,
                               self.options.eval_batch_size, self.options.workers, self.device,
                               progress=self.options.progress and sys.stderr.isatty())
        if self.budget_s:  # the measured pass replaces the estimate
            self.eval_reserve = 1.2 * (time.time() - started) + 5.0
        return stats

    def fit(self) -> dict:
        """Train; a run folder this start created is removed again if it fails before any checkpoint."""
        try:
            return self._fit()
        except RuntimeError as exc:
            if "unable to resize file" not in str(exc) and "shared memory" not in str(exc).lower():
                raise
            self._remove_failed_output()
            # a DataLoader worker hands batches over through /dev/shm; a small one (Docker's 64 MB) fills
            raise EdgeEdetError("the data-loading workers could not pass batches through shared memory "
                                "(/dev/shm is full or too small); pass --workers 0 or give the container more "
                                "shared memory (docker run --shm-size 1g)") from None
        except BaseException:
            self._remove_failed_output()
            raise

    def _remove_failed_output(self) -> None:
        """A run folder this start created goes again if no checkpoint reached it."""
        if self.created_output and not os.path.exists(self.last_path):
            import shutil

            shutil.rmtree(self.options.output, ignore_errors=True)

    def _save(self, state: dict, epoch: int) -> None:
        """last.pth; a failed write says what the run folder still holds."""
        try:
            save_atomic(state, self.last_path)
        except EdgeEdetError as exc:
            kept = (f"the run keeps its epoch {epoch} checkpoint (--resume continues from it)" if epoch > 0
                    and os.path.isfile(self.last_path) else "no epoch was saved")
            raise EdgeEdetError(f"{exc}; {kept}") from None

    def _fit(self) -> dict:
        options = self.options
        if self.finished_stats is not None:  # nothing left to train: its last validation is the result
            return self.finished_stats
        write_text_atomic(os.path.join(options.output, "labels.txt"), "\n".join(self.labels) + "\n")
        stats = {}
        self.bar = TrainProgress(self.total_steps, self.budget_s, options.log_every, enabled=options.progress)
        if self.budget_s:  # again, with the whole setup spent (the timed batch from __init__ reused)
            self.reserve_for_eval(self.eval_estimate)
        for epoch in range(self.start_epoch, options.epochs):
            started = time.time()
            train = self.train_epoch(epoch)
            last_epoch = epoch + 1 == options.epochs or self.out_of_time
            stats = {name: float("nan") for name in STAT_NAMES}
            if (epoch + 1) % options.eval_every == 0 or last_epoch:
                stats = self.evaluate()
            seconds = time.time() - started
            improved = not math.isnan(stats["AP"]) and stats["AP"] > self.best_ap
            if improved:
                self.best_ap = stats["AP"]
            state = self.checkpoint_state(epoch + 1)
            state["stats"] = {k: float(v) for k, v in stats.items()}
            self._save(state, epoch)
            if improved:
                save_atomic(state, self.best_path)
            self.log.append({"epoch": epoch + 1, "train_loss": f"{train['loss']:.5f}",
                             "cls_loss": f"{train['cls_loss']:.5f}", "box_loss": f"{train['box_loss']:.6f}",
                             "lr": f"{train['lr']:.3e}", "AP": f"{stats['AP']:.4f}", "AP50": f"{stats['AP50']:.4f}",
                             "AP75": f"{stats['AP75']:.4f}", "seconds": f"{seconds:.0f}"})
            print(f"epoch {epoch + 1}/{options.epochs}: loss {train['loss']:.4f} (cls {train['cls_loss']:.4f}, "
                  f"box {train['box_loss']:.5f}) AP {stats['AP']:.4f} AP50 {stats['AP50']:.4f} "
                  f"[{seconds:.0f} s]{' best' if improved else ''}", flush=True)
            if self.out_of_time:
                break
        self.bar.close()
        if self.out_of_time:
            print(f"stopped after {self.step} steps: the {options.max_minutes:g}-minute budget is spent "
                  f"({self.elapsed():.0f} s with validation)", flush=True)
        return stats
