"""Probes of a frozen encoder on features cached once: linear, attentive, kNN (docs/using.md)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from mme.data.loader import classification_dataset, eval_loader
from mme.errors import ConfigError
from mme.eval.evaluate import dataset_class_names, evaluate_scores, gather_views, write_eval_files
from mme.eval.metrics import topk_correct
from mme.train.distributed import DistEnv, broadcast_from_main
from mme.train.run import Run
from mme.train.run_config import ProbeConfig
from mme.train.trainer import Precision
from mme.utils.logging import Progress, RunLog, format_value


def encoder_output(model: nn.Module, head: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The frozen encoder's output a head reads: tokens (B, N, D) (attentive) or pooled features (B, D)."""
    if head == "attentive":
        return lambda clip: model.forward_blocks(model.embed(clip))
    return model.forward_features


def extract_features(
    model: nn.Module,
    loader: Any,
    dataset: Any,
    env: DistEnv,
    precision: Precision,
    log: RunLog,
    desc: str,
    head: str = "linear",
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """Rank 0's ``(features, labels)`` of the videos that decoded (token grids in float16), else None."""
    model.eval()
    encode = encoder_output(model, head)

    def features(clip: torch.Tensor) -> torch.Tensor:
        with precision.autocast():
            return encode(clip)

    dtype = torch.float16 if head == "attentive" else torch.float32
    views = gather_views(features, loader, dataset, env, log, desc, dtype=dtype)
    if views is None:
        return None
    if dtype == torch.float16 and not torch.isfinite(views["values"]).all():
        raise ConfigError(
            f"{desc}: the encoder's tokens exceed float16's range, in which the attentive probe caches "
            "them; use probe.head=linear or knn"
        )
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


class AttentiveProbe(nn.Module):
    """One learned query cross-attending over the LayerNorm-ed token grid, then a linear layer."""

    def __init__(self, dim: int, num_classes: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ConfigError(f"probe.num_heads={num_heads} must divide the encoder width {dim}")
        self.norm = nn.LayerNorm(dim)
        self.query = nn.Parameter(torch.zeros(1, 1, dim))
        self.attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.head = nn.Linear(dim, num_classes)
        nn.init.trunc_normal_(self.query, std=0.02)
        nn.init.trunc_normal_(self.head.weight, std=0.01)
        nn.init.zeros_(self.head.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens (B, N, D)`` (any float dtype) -> logits ``(B, num_classes)``."""
        x = self.norm(tokens.float())
        pooled, _ = self.attn(self.query.expand(x.shape[0], -1, -1), x, x, need_weights=False)
        return self.head(pooled[:, 0])


def knn_scores(
    query: torch.Tensor,
    bank: torch.Tensor,
    bank_labels: torch.Tensor,
    num_classes: int,
    k: int,
    temperature: float,
) -> torch.Tensor:
    """Class scores summing to 1: votes of the ``k`` most cosine-similar ``bank`` rows, weighted."""
    similarity = F.normalize(query.float(), dim=1) @ F.normalize(bank.float(), dim=1).T
    top, index = similarity.topk(min(k, bank.shape[0]), dim=1)
    weights = ((top - top[:, :1]) / temperature).exp()  # shifted by the best: never overflows
    votes = torch.zeros(query.shape[0], num_classes, device=query.device)
    votes.scatter_add_(1, bank_labels.to(query.device)[index], weights)
    return votes / votes.sum(dim=1, keepdim=True)


def accuracy(
    probe: nn.Module, features: torch.Tensor, labels: torch.Tensor, batch: int | None = None
) -> float:
    """Top-1 (%) of ``probe`` on cached features, in batches of ``batch`` (None: all at once)."""
    probe.eval()
    step = batch or features.shape[0]
    with torch.no_grad():
        correct = sum(
            topk_correct(probe(features[start : start + step]), labels[start : start + step], (1,))[1]
            for start in range(0, features.shape[0], step)
        )
    return 100.0 * correct / labels.shape[0]


def make_head(settings: Any, features: torch.Tensor, num_classes: int) -> nn.Module:
    if settings.head == "attentive":
        return AttentiveProbe(features.shape[-1], num_classes, settings.num_heads)
    return LinearProbe(features.shape[1], num_classes)


def train_probe(
    config: ProbeConfig,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    num_classes: int,
    run: Run,
) -> tuple[nn.Module, dict[str, Any]]:
    """AdamW + cosine lr over ``probe.epochs`` on cached features (one process)."""
    settings = config.probe
    features, labels = train
    generator = torch.Generator().manual_seed(config.runtime.seed)
    probe = make_head(settings, features, num_classes)
    # Token grids are large: score them in training-sized batches (pooled features at once).
    batch = settings.batch_size if settings.head == "attentive" else None
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
            loss = nn.functional.cross_entropy(probe(features[index].float()), labels[index])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(float(loss.detach()))
            step += 1
        train_top1 = accuracy(probe, features, labels, batch)
        metrics = {"loss": sum(losses) / max(len(losses), 1), "train_top1": train_top1}
        if val is not None:
            metrics["val_top1"] = accuracy(probe, *val, batch)
            if history["best_top1"] is None or metrics["val_top1"] > history["best_top1"]:
                history["best_top1"], history["best_epoch"] = metrics["val_top1"], epoch
        run.log.metrics("probe", epoch=epoch, **metrics)
        run.scalars("probe", metrics, epoch)
        history["final"] = metrics
        bar.update(loss=metrics["loss"])
    bar.close()
    return probe, history


def run_probe(config: ProbeConfig) -> dict[str, Any]:
    from mme.interop import load_classifier_with_report

    with Run(config, "probe", training=False) as run:
        data, kind = config.data, config.probe.head
        settings = config.model_settings()
        encoder, report = load_classifier_with_report(config.model.init_from, num_classes=0, **settings)
        encoder.requires_grad_(False)
        encoder.to(run.device)
        # Train clips with the validation transform: one centred clip per video.
        train_set = classification_dataset(config, "val", list_from="train")
        val_set = classification_dataset(config, "val") if data.val_list else None
        test_set = classification_dataset(config, "test") if data.test_list else None
        for dataset in (val_set, test_set):  # before any encoding: a label the head has no output for
            if dataset is not None:
                dataset.check_labels(train_set.num_classes, train_set.num_classes_source)
        names = None
        if test_set is not None:  # for the test's files; checked before anything is written
            found = dataset_class_names(data, data.train_list, train_set.num_classes, "the train list has")
            names = None if found is None else found[0]
        run.start()
        run.log.info("encoder from %s: %s", config.model.init_from, report.summary())
        precision = Precision(config.runtime.precision, run.device)
        loader = eval_loader(train_set, config.batch.per_gpu, config.runtime, run.env)
        train = extract_features(
            encoder, loader, train_set, run.env, precision, run.log, "features train", kind
        )
        val = None
        if val_set is not None:
            loader = eval_loader(val_set, config.batch.per_gpu, config.runtime, run.env)
            val = extract_features(
                encoder, loader, val_set, run.env, precision, run.log, "features val", kind
            )
        summary: dict[str, Any] = {"command": "probe", "checkpoint": config.model.init_from}
        fitted = None
        if train is not None:  # rank 0
            fitted, details = FIT[kind](config, encoder, train, val, train_set.num_classes, run)
            summary.update(
                {
                    "train_videos": train[1].shape[0],
                    "val_videos": val[1].shape[0] if val is not None else 0,
                    "failed_videos": {
                        "train": len(train_set) - train[1].shape[0],
                        "val": len(val_set) - val[1].shape[0] if val is not None else 0,
                    },
                    **details,
                }
            )
        if test_set is not None:
            fitted = broadcast_from_main(fitted)  # trained on rank 0, tested on every rank
            scores = head_scores(config, encoder, fitted, train_set.num_classes, precision, run.device)
            loader = eval_loader(test_set, config.batch.per_gpu, config.runtime, run.env)
            result = evaluate_scores(scores, loader, test_set, run.env, run.log, "test")
            if run.is_main:
                written = write_eval_files(result, run.out / "eval", test_set.entries, names)
                summary["test"] = {key: written[key] for key in TEST_KEYS}
        human = f"{kind} probe: val top-1 {format_value(summary.get('val_top1'))}"
        if "test" in summary:
            views = f"{data.test_clips}x{data.test_crops} views"
            human += f", test top-1 {format_value(summary['test']['top1'])} ({views})"
        run.write_summary(summary, human)
        return summary


TEST_KEYS = ("videos", "views_per_video", "failed_videos", "top1", "top5", "view_top1", "view_top5")


def fit_linear(
    config: ProbeConfig,
    encoder: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    num_classes: int,
    run: Run,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train the linear probe, fold it into the encoder's head and save that classifier."""
    from mme.models import save_model

    probe, history = train_probe(config, train, val, num_classes, run)
    encoder.reset_head(num_classes)
    weight, bias = probe.folded()
    with torch.no_grad():
        encoder.head.weight.copy_(weight)
        encoder.head.bias.copy_(bias)
    encoder.model_name = config.model.name
    save_model(encoder.cpu(), run.out / "model", overwrite=True)
    encoder.to(run.device)
    details = {**trained_details(history), "model": str(run.out / "model")}
    return {"weight": weight, "bias": bias}, details


def fit_attentive(
    config: ProbeConfig,
    encoder: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    num_classes: int,
    run: Run,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Train the attentive probe on the cached token grids and save its weights."""
    import json

    from safetensors.torch import save_file

    from mme.utils.atomic import atomic_path

    probe, history = train_probe(config, train, val, num_classes, run)
    state = {key: value.detach().cpu().contiguous() for key, value in probe.state_dict().items()}
    path = run.out / "attentive_probe.safetensors"
    meta = {"dim": encoder.embed_dim, "num_classes": num_classes, "num_heads": config.probe.num_heads}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={"mme_attentive_probe": json.dumps(meta)})
    return state, {**trained_details(history), "probe": str(path)}


def fit_knn(
    config: ProbeConfig,
    encoder: nn.Module,
    train: tuple[torch.Tensor, torch.Tensor],
    val: tuple[torch.Tensor, torch.Tensor] | None,
    num_classes: int,
    run: Run,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Nothing to train: the train features are the bank; the val top-1 of their vote."""
    settings = config.probe
    bank, labels = train
    details: dict[str, Any] = {"val_top1": None, "k": settings.k, "temperature": settings.temperature}
    if val is not None:
        scores = knn_scores(val[0], bank, labels, num_classes, settings.k, settings.temperature)
        details["val_top1"] = 100.0 * topk_correct(scores, val[1], (1,))[1] / val[1].shape[0]
        run.log.metrics("probe", val_top1=details["val_top1"])
    return {"bank": bank, "labels": labels}, details


def trained_details(history: dict[str, Any]) -> dict[str, Any]:
    return {
        "val_top1": history["final"].get("val_top1"),
        "best_val_top1": history["best_top1"],
        "best_epoch": history["best_epoch"],
        "train_top1": history["final"]["train_top1"],
    }


FIT = {"linear": fit_linear, "attentive": fit_attentive, "knn": fit_knn}


def head_scores(
    config: ProbeConfig,
    encoder: nn.Module,
    fitted: dict[str, torch.Tensor],
    num_classes: int,
    precision: Precision,
    device: torch.device,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``scores(normalised clips)`` of the fitted head on the frozen encoder, for the multi-view test."""
    settings = config.probe
    encoder.eval()
    encode = encoder_output(encoder, settings.head)
    fitted = {key: value.to(device) for key, value in fitted.items()}
    probe = None
    if settings.head == "attentive":
        probe = AttentiveProbe(encoder.embed_dim, num_classes, settings.num_heads).to(device)
        probe.load_state_dict(fitted)
        probe.eval()

    def head(features: torch.Tensor) -> torch.Tensor:
        if settings.head == "linear":
            return F.linear(features, fitted["weight"], fitted["bias"]).softmax(dim=-1)
        if probe is not None:
            return probe(features).softmax(dim=-1)
        return knn_scores(
            features, fitted["bank"], fitted["labels"], num_classes, settings.k, settings.temperature
        )

    def scores(clip: torch.Tensor) -> torch.Tensor:
        with precision.autocast():
            features = encode(clip)
        return head(features.float())

    return scores
