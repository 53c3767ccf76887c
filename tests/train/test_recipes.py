"""Every recipe in configs/ loads and validates, and the released ones say what docs/method.md §6 says."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mme.train.optim import scaled_lr
from mme.train.run_config import EvalConfig, FinetuneConfig, PretrainConfig, ProbeConfig, load_run_config

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
SCHEMAS = {"pretrain": PretrainConfig, "finetune": FinetuneConfig, "eval": EvalConfig, "probe": ProbeConfig}
RECIPES = sorted(
    p for p in CONFIGS.rglob("*.yaml") if not p.stem.startswith(("base", "common"))
)  # base_*.yaml and common.yaml are only included by the others


def _schema(path: Path) -> type:
    kind = path.parent.name if path.parent.name in SCHEMAS else path.stem
    return SCHEMAS[kind]


def _load(path: Path, tmp_path: Path):
    schema = _schema(path)
    existing = tmp_path / "weights.pt"
    existing.write_bytes(b"")
    overrides = {
        PretrainConfig: [],
        FinetuneConfig: ["model.init_from=null"],
        ProbeConfig: [f"model.init_from={existing}"],
        EvalConfig: [f"checkpoint={existing}"],
    }[schema]
    return load_run_config(schema, path, overrides)


def _raw_chain(path: Path) -> dict:
    """The merged raw YAML of a recipe and its includes (what the recipe files themselves state)."""
    data = yaml.safe_load(path.read_text())
    merged: dict = {}
    for include in [data.pop("_base_")] if "_base_" in data else []:
        merged = _raw_chain(path.parent / include)
    for key, value in data.items():
        merged[key] = {**merged.get(key, {}), **value} if isinstance(value, dict) else value
    return merged


@pytest.mark.parametrize("path", RECIPES, ids=[str(p.relative_to(CONFIGS)) for p in RECIPES])
def test_recipe_loads_and_states_its_batch(path, tmp_path):
    config = _load(path, tmp_path)
    assert config.runtime.output_dir.startswith("runs/")
    if isinstance(config, (PretrainConfig, FinetuneConfig)):
        stated = _raw_chain(path)["batch"]
        assert {"per_gpu", "num_gpus"} <= set(stated), "training recipes state per-GPU batch and GPU count"


@pytest.mark.parametrize("epochs", [400, 800, 1600])
def test_k400_pretraining_is_the_released_recipe(epochs, tmp_path):
    config = _load(CONFIGS / "pretrain" / f"k400_vitb_{epochs}ep.yaml", tmp_path)
    assert config.schedule.epochs == epochs and config.schedule.warmup_epochs == 40
    assert config.model.name == "mme_vit_base_patch16_224" and config.predict == ["hog", "traj"]
    assert (config.data.mask_type, config.data.mask_ratio, config.data.flip) == ("tube", 0.7, False)
    assert (config.data.num_frames, config.data.stride, config.data.input_size) == (16, 4, 224)
    assert config.data.scales == [1.0, 0.875, 0.75, 0.66]
    assert config.optim.betas == [0.9, 0.95] and config.optim.weight_decay == 0.05
    assert config.optim.clip_grad is None and config.runtime.precision == "fp16"
    global_batch = config.batch.per_gpu * config.batch.num_gpus * config.batch.update_freq
    assert scaled_lr(config.optim.base_lr, global_batch) == pytest.approx(6e-4)
    assert scaled_lr(config.optim.min_lr, global_batch) == pytest.approx(4e-5)
    # the released 400/800-epoch SSV2 results fine-tune epochs 399/699 of the 1600-epoch run
    assert config.save_model_epochs == ([399, 699] if epochs == 1600 else [])


@pytest.mark.parametrize(
    ("name", "classes", "lr", "epochs", "clips", "update_freq"),
    [
        ("ssv2", 174, 5e-4, 30, 2, 1),
        ("k400", 400, 1e-3, 75, 7, 1),
        ("ucf101", 101, 1e-3, 100, 10, 4),
        ("hmdb51", 51, 1e-3, 100, 10, 4),
    ],
)
def test_finetuning_recipes(name, classes, lr, epochs, clips, update_freq, tmp_path):
    config = _load(CONFIGS / "finetune" / f"{name}_vitb.yaml", tmp_path)
    assert (config.data.num_classes, config.optim.base_lr, config.schedule.epochs) == (classes, lr, epochs)
    assert (config.data.test_clips, config.data.test_crops, config.batch.update_freq) == (
        clips,
        3,
        update_freq,
    )
    assert config.optim.layer_decay == 0.75 and config.optim.betas == [0.9, 0.999]
    assert config.model.overrides.given() == {"drop_path_rate": 0.1} and config.schedule.warmup_epochs == 5
    assert config.data.rand_augment == "rand-m7-n4-mstd0.5-inc1" and config.data.reprob == 0.25
    assert (config.mixup.mixup_alpha, config.mixup.cutmix_alpha, config.mixup.label_smoothing) == (
        0.8,
        1.0,
        0.1,
    )
    assert config.data.num_sample == 2 and config.data.min_area == 0.25
    evaluation = _load(CONFIGS / "eval" / f"{name}_vitb.yaml", tmp_path)
    assert (evaluation.data.test_clips, evaluation.data.test_crops) == (clips, 3)
    assert evaluation.data.sampling == config.data.sampling
