"""Hugging Face export and import: class names (``id2label``) both ways, ``preprocessor_config.json``
matching mme's input, and ``transformers``' own loaders and video-classification pipeline on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from model_helpers import FRAMES, SIZE, tiny_classifier

from mme.data.transforms import normalize_clip
from mme.errors import CheckpointError, ConfigError
from mme.interop import export_hf, load_classifier, load_classifier_with_report
from mme.models import model_config_dict, save_model

transformers = pytest.importorskip("transformers")

NAMES = ["run", "jump", "swim", "walk", "sit"]


def _hf_folder(tmp_path: Path, names: list[str] | None = None) -> Path:
    """A tiny HF VideoMAE classifier saved by ``transformers`` (with ``id2label`` when names are given)."""
    labels = (
        {}
        if names is None
        else {"id2label": dict(enumerate(names)), "label2id": {n: i for i, n in enumerate(names)}}
    )
    config = transformers.VideoMAEConfig(
        image_size=SIZE,
        num_frames=FRAMES,
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=256,
        num_labels=len(NAMES),
        **labels,
    )
    torch.manual_seed(0)
    transformers.VideoMAEForVideoClassification(config).save_pretrained(tmp_path / "hf")
    return tmp_path / "hf"


def _named_classifier() -> torch.nn.Module:
    model = tiny_classifier(init_scale=1.0).eval()  # a full-size head: the classes' scores differ clearly
    model.class_names = NAMES
    return model


def _as_clip(frames: np.ndarray) -> torch.Tensor:
    """uint8 frames (T, H, W, 3) -> mme's normalised clip (1, 3, T, H, W)."""
    return normalize_clip(torch.from_numpy(frames).permute(3, 0, 1, 2)[None])


def test_hf_class_names_survive_mme_and_back(tmp_path):
    model = load_classifier(_hf_folder(tmp_path, NAMES))
    assert model.class_names == NAMES
    save_model(model, tmp_path / "mme")
    assert json.loads((tmp_path / "mme" / "config.json").read_text())["class_names"] == NAMES
    export_hf(load_classifier(tmp_path / "mme"), tmp_path / "back")
    config = transformers.AutoConfig.from_pretrained(tmp_path / "back")
    assert config.id2label == dict(enumerate(NAMES))
    assert config.label2id == {name: i for i, name in enumerate(NAMES)}
    # a training checkpoint carries them in model_config, as the trainer writes it
    torch.save({"model": model.state_dict(), "model_config": model_config_dict(model)}, tmp_path / "step.pt")
    assert load_classifier(tmp_path / "step.pt").class_names == NAMES
    # another class count is a new head: its outputs are not these classes
    other, report = load_classifier_with_report(tmp_path / "mme", num_classes=3)
    assert other.class_names is None
    assert "the checkpoint's class names are dropped with its head" in report.notes


def test_hf_placeholder_labels_are_not_class_names(tmp_path):
    folder = _hf_folder(tmp_path)
    assert json.loads((folder / "config.json").read_text())["id2label"]["4"] == "LABEL_4"
    model = load_classifier(folder)
    assert model.class_names is None
    export_hf(model, tmp_path / "back")
    config = json.loads((tmp_path / "back" / "config.json").read_text())
    assert config["id2label"] == {str(i): f"LABEL_{i}" for i in range(5)}


def test_class_names_must_fit_the_head(tmp_path):
    model = tiny_classifier()
    with pytest.raises(ConfigError, match="3 class names for a head of 5 classes"):
        model.class_names = NAMES[:3]
    with pytest.raises(ConfigError, match="unique; repeated: 'run'"):
        model.class_names = ["run", "run", "swim", "walk", "sit"]
    payload = {**model_config_dict(model), "class_names": NAMES[:3]}
    torch.save({"model": model.state_dict(), "model_config": payload}, tmp_path / "bad.pt")
    with pytest.raises(CheckpointError, match=r"bad\.pt: 3 class names for a head of 5 classes"):
        load_classifier(tmp_path / "bad.pt")


def test_image_processor_of_the_export_feeds_the_model_what_mme_does(tmp_path):
    model = _named_classifier()
    export_hf(model, tmp_path / "hf")
    processor = transformers.AutoImageProcessor.from_pretrained(tmp_path / "hf")
    hf = transformers.VideoMAEForVideoClassification.from_pretrained(tmp_path / "hf").eval()
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (FRAMES, SIZE, SIZE, 3), dtype=np.uint8)
    pixel_values = processor(list(frames), return_tensors="pt")["pixel_values"]
    assert pixel_values.shape == (1, FRAMES, 3, SIZE, SIZE)  # HF's (B, T, C, H, W)
    clip = _as_clip(frames)
    # ImageNet mean/std as mme's normalize_clip (HF's VideoMAE default would be 0.5/0.5)
    assert (pixel_values - clip.permute(0, 2, 1, 3, 4)).abs().max() <= 1e-5
    with torch.no_grad():
        assert (hf(pixel_values=pixel_values).logits - model(clip)).abs().max() <= 1e-4
    # larger non-square frames: short side resized to the model's size, then a centred square crop
    wide = rng.integers(0, 256, (FRAMES, 48, 80, 3), dtype=np.uint8)
    assert processor(list(wide), return_tensors="pt")["pixel_values"].shape == (1, FRAMES, 3, SIZE, SIZE)


def test_video_classification_pipeline_runs_on_the_export(tmp_path):
    pytest.importorskip("av")  # the pipeline decodes videos with PyAV
    from mme.io.video import open_video, write_video

    model = _named_classifier()
    export_hf(model, tmp_path / "hf")
    rng = np.random.default_rng(1)
    write_video(tmp_path / "clip.mp4", rng.integers(0, 256, (2 * FRAMES, SIZE, SIZE, 3), dtype=np.uint8))
    pipe = transformers.pipeline("video-classification", model=str(tmp_path / "hf"))
    result = pipe(str(tmp_path / "clip.mp4"), top_k=len(NAMES))
    # the pipeline classifies the first num_frames frames (config.json's num_frames, sampling rate 1)
    decoded = open_video(tmp_path / "clip.mp4").get_frames(list(range(FRAMES)))
    with torch.no_grad():
        probs = model(_as_clip(decoded)).softmax(dim=-1)[0].tolist()
    expected = sorted(zip(NAMES, probs, strict=True), key=lambda item: -item[1])
    assert [r["label"] for r in result] == [name for name, _ in expected]
    assert max(abs(r["score"] - p) for r, (_, p) in zip(result, expected, strict=True)) <= 1e-4
