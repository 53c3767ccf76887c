"""Linear probing: how linearly separable are a frozen pre-trained encoder's features?

What we do (and why):

1. the encoder (``model.init_from``, any checkpoint ``mme.models`` reads) is frozen; each video
   of the train and val lists gives one centred clip (validation transform), encoded once into
   its pooled, ``fc_norm``-ed features, distributed over ranks and gathered on rank 0. Caching
   the features once, instead of re-encoding augmented clips every epoch as MAE's image probe
   does, makes the probe cost one pass of the encoder over the data;
2. on rank 0, a linear head behind a BatchNorm without affine parameters (MAE's linear probe:
   it standardises the features so one lr suits every encoder) is trained with AdamW and a
   cosine schedule on the cached features; the val top-1 is reported every epoch;
3. the BatchNorm is folded into the linear layer and the result written as an ordinary
   classifier (``<output_dir>/model``) that ``mme eval`` can test with multiple views.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn

from mme.train.config import ProbeConfig
from mme.train.data import classification_dataset, eval_loader
from mme.train.distributed import DistEnv
from mme.train.engine import Precision
from mme.train.evaluate import gather_views
from mme.train.metrics import topk_correct
from mme.train.run import Run
from mme.utils.logging import Progress, RunLog, format_value


def extract_features(
    model: nn.Module, loader: Any, dataset: Any, env: DistEnv, precision: Precision, log: RunLog, desc: str
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(features (n, D), labels (n,))`` of the videos that decoded, in dataset order, on rank 0
    (None on the other ranks). A video that cannot be decoded is left out, never stood in for by
    another video's features under its label; too many of them stop the job (DataError on every
    rank, see :func:`mme.train.evaluate.gather_views`)."""
    model.eval()

    def features(clip: torch.Tensor) -> torch.Tensor:
        with precision.autocast():
            return model.forward_features(clip)

    views = gather_views(features, loader, dataset, env, log, desc)
    if views is None:
        return None
    labels = torch.tensor([entry.label for entry in dataset.entries], dtype=torch.long)
    return views["values"], labels[views["item"]]  # one view per video: item = video


class LinearProbe(nn.Module):
    """BatchNorm (no affine) + Linear: MAE's linear-probe head."""

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(dim, affine=False, eps=1e-6)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(self.norm(features))

    def folded(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(weight, bias)`` of one Linear equal to this head in eval mode (BN folded in)."""
        scale = torch.rsqrt(self.norm.running_var + self.norm.eps)
        weight = self.head.weight * scale
        bias = self.head.bias - weight @ self.norm.running_mean
        return weight.detach().clone(), bias.detach().clone()


def accuracy(probe: LinearProbe, features: torch.Tensor, labels: torch.Tensor) -> float:
    probe.eval()
    with torch.no_grad():
        correct = topk_correct(probe(features), labels, (1,))[1]
    return 100.0 * correct / labels.shape[0]


def train_probe(
    config: ProbeConfig,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    num_classes: int,
    run: Run,
) -> tuple[LinearProbe, dict[str, Any]]:
    """AdamW + cosine lr over ``probe.epochs`` on cached features (one process)."""
    settings = config.probe
    features, labels = train
    generator = torch.Generator().manual_seed(config.runtime.seed)
    probe = LinearProbe(features.shape[1], num_classes)
    optimizer = torch.optim.AdamW(probe.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    batches = math.ceil(features.shape[0] / settings.batch_size)
    total = settings.epochs * batches
    history: dict[str, Any] = {"best_top1": None, "best_epoch": None}
    step = 0
    bar = Progress(settings.epochs, "probe head", unit="epoch", logger=run.log)
    for epoch in range(settings.epochs):
        probe.train()
        order = torch.randperm(features.shape[0], generator=generator)
        losses = []
        for start in range(0, features.shape[0], settings.batch_size):
            index = order[start : start + settings.batch_size]
            if index.numel() < 2:  # BatchNorm needs two samples
                continue
            for group in optimizer.param_groups:
                group["lr"] = settings.lr * 0.5 * (1 + math.cos(math.pi * step / total))
            loss = nn.functional.cross_entropy(probe(features[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            step += 1
        metrics = {"loss": sum(losses) / max(len(losses), 1), "train_top1": accuracy(probe, features, labels)}
        if val is not None:
            metrics["val_top1"] = accuracy(probe, *val)
            if history["best_top1"] is None or metrics["val_top1"] > history["best_top1"]:
                history["best_top1"], history["best_epoch"] = metrics["val_top1"], epoch
        run.log.metrics("probe", epoch=epoch, **metrics)
        run.scalars("probe", metrics, epoch)
        history["final"] = metrics
        bar.update(loss=metrics["loss"])
    bar.close()
    return probe, history


def run_probe(config: ProbeConfig) -> dict[str, Any]:
    from mme.models import load_classifier_with_report, save_model

    with Run(config, "probe", training=False) as run:
        data = config.data
        settings = {
            **config.model.overrides,
            "num_frames": data.num_frames,
            "img_size": data.input_size,
            "patch_size": data.patch_size,
            "tubelet_size": data.tubelet_size,
        }
        encoder, report = load_classifier_with_report(config.model.init_from, num_classes=0, **settings)
        encoder.requires_grad_(False)
        encoder.to(run.device)
        # Train clips with the validation transform: one centred clip per video.
        train_set = classification_dataset(config, "val", list_from="train")
        val_set = classification_dataset(config, "val") if data.val_list else None
        if val_set is not None:  # before any encoding: a val label the head has no output for
            val_set.check_labels(train_set.num_classes, train_set.num_classes_source)
        run.start()
        run.log.info("encoder from %s: %s", config.model.init_from, report.summary())
        precision = Precision(config.runtime.precision, run.device)
        loader = eval_loader(train_set, config.batch.per_gpu, config.runtime, run.env)
        train = extract_features(encoder, loader, train_set, run.env, precision, run.log, "features train")
        val = None
        if val_set is not None:
            loader = eval_loader(val_set, config.batch.per_gpu, config.runtime, run.env)
            val = extract_features(encoder, loader, val_set, run.env, precision, run.log, "features val")
        summary: dict[str, Any] = {"command": "probe", "checkpoint": config.model.init_from}
        if train is not None:  # rank 0
            num_classes = train_set.num_classes
            probe, history = train_probe(config, train, val, num_classes, run)
            encoder.reset_head(num_classes)
            weight, bias = probe.folded()
            with torch.no_grad():
                encoder.head.weight.copy_(weight)
                encoder.head.bias.copy_(bias)
            encoder.model_name = config.model.name
            save_model(encoder.cpu(), run.out / "model", overwrite=True)
            summary.update(
                {
                    "train_videos": train[1].shape[0],
                    "val_videos": val[1].shape[0] if val is not None else 0,
                    "failed_videos": {
                        "train": len(train_set) - train[1].shape[0],
                        "val": len(val_set) - val[1].shape[0] if val is not None else 0,
                    },
                    "val_top1": history["final"].get("val_top1"),
                    "best_val_top1": history["best_top1"],
                    "best_epoch": history["best_epoch"],
                    "train_top1": history["final"]["train_top1"],
                    "model": str(run.out / "model"),
                }
            )
        run.write_summary(summary, f"linear probe: val top-1 {format_value(summary.get('val_top1'))}")
        return summary
