"""Checkpoints: our format, original MME/VideoMAE and DeepSpeed layouts, Hugging Face, and the errors."""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
from pathlib import Path

import pytest
import torch
from model_helpers import (
    original_finetune_state,
    original_pretrain_state,
    random_clip,
    reference_classifier,
    reference_pretrain,
    tiny_classifier,
    tiny_pretrain,
    tube_mask,
)

from mme.errors import CheckpointError
from mme.interop import (
    export_hf,
    load_classifier,
    load_classifier_with_report,
    load_pretrain_model_with_report,
)
from mme.interop.adapters.videomae import original_head_rows
from mme.models import model_config_dict, save_model
from mme.models.layers import sincos_table
from mme.objectives import head_specs


def _state_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def _perturb(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Random non-zero biases and norm weights, so that every tensor matters for the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in model.parameters():
            param.add_(0.05 * torch.randn(param.shape, generator=gen))
    return model.eval()


# ----------------------------------------------------------------------------- our format


@pytest.mark.parametrize("target", ["folder", "file"])
def test_own_format_round_trip_is_exact(tmp_path, target):
    clip = random_clip()
    model = _perturb(tiny_classifier())
    dst = tmp_path / ("model" if target == "folder" else "model.safetensors")
    save_model(model, dst)
    loaded, report = load_classifier_with_report(dst)
    assert report.layout == "mme" and report.new == [] and report.dropped == [] and report.notes == []
    assert _state_equal(model, loaded) and loaded.config == model.config
    assert loaded.model_name == "vit_tiny_patch16_224"
    assert torch.equal(loaded.eval()(clip), model(clip))
    if target == "folder":
        payload = json.loads((dst / "config.json").read_text())
        assert payload["kind"] == "classifier" and payload["config"]["depth"] == 2


def test_saved_folders_and_their_files_get_the_umask_mode(tmp_path):
    """Built in a private temporary folder, a model folder must end up as a plain mkdir would make it."""
    model = tiny_classifier()
    old = os.umask(0o027)
    try:
        save_model(model, tmp_path / "model")
        save_model(model, tmp_path / "single.safetensors")
        export_hf(model, tmp_path / "hf")
    finally:
        os.umask(old)
    for folder in (tmp_path / "model", tmp_path / "hf"):
        assert folder.stat().st_mode & 0o777 == 0o750, folder
        files = {p.name: p.stat().st_mode & 0o777 for p in folder.iterdir()}
        assert "model.safetensors" in files and set(files.values()) == {0o640}, (folder, files)
    assert (tmp_path / "single.safetensors").stat().st_mode & 0o777 == 0o640


def test_pretrain_model_round_trip_is_exact(tmp_path):
    model = _perturb(tiny_pretrain(heads=head_specs(["hog", "traj", "pixel"])))
    save_model(model, tmp_path / "pt")
    loaded, report = load_pretrain_model_with_report(tmp_path / "pt")
    assert report.new == [] and report.dropped == []
    assert _state_equal(model, loaded) and loaded.config == model.config
    clip, mask = random_clip(), tube_mask(2, (2, 2, 2), 2)
    expected, got = model(clip, mask), loaded.eval()(clip, mask)
    assert all(torch.equal(expected[k], got[k]) for k in expected)


@pytest.mark.parametrize("prefix", ["", "module.", "_orig_mod."])
def test_training_checkpoint_with_model_config(tmp_path, prefix):
    model = _perturb(tiny_classifier())
    optimizer = torch.optim.AdamW(model.parameters())
    path = tmp_path / "checkpoint.pt"
    state = {prefix + k: v for k, v in model.state_dict().items()}
    torch.save(
        {"model": state, "model_config": model_config_dict(model), "optimizer": optimizer.state_dict()}, path
    )
    loaded, report = load_classifier_with_report(path)
    assert report.layout == "mme-train" and report.new == [] and report.dropped == []
    assert _state_equal(model, loaded)


def test_other_frame_count_and_image_size_rebuild_the_table(tmp_path):
    save_model(_perturb(tiny_classifier()), tmp_path / "m")
    model = load_classifier(tmp_path / "m", num_frames=8, img_size=48).eval()
    assert model.config.num_frames == 8 and model.pos_embed.shape == (1, 36, 192)
    assert torch.equal(model.pos_embed, sincos_table(36, 192))
    logits = model(random_clip(batch=2, frames=8, size=48))
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()


def test_new_class_count_gives_a_new_reported_head(tmp_path):
    model = _perturb(tiny_classifier(num_classes=5))
    save_model(model, tmp_path / "m")
    loaded, report = load_classifier_with_report(tmp_path / "m", num_classes=7)
    assert loaded.num_classes == 7 and report.new_head
    assert report.new == ["head.weight", "head.bias"] and set(report.dropped) == {"head.weight", "head.bias"}
    assert any("7 classes" in note and "5" in note for note in report.notes)
    assert torch.equal(loaded.blocks[1].mlp.fc2.weight, model.blocks[1].mlp.fc2.weight)


def test_save_refuses_to_overwrite_and_failures_leave_nothing(tmp_path):
    model = tiny_classifier()
    save_model(model, tmp_path / "m")
    with pytest.raises(CheckpointError, match="already exists"):
        save_model(model, tmp_path / "m")
    other = _perturb(tiny_classifier(), seed=5)
    save_model(other, tmp_path / "m", overwrite=True)
    assert _state_equal(load_classifier(tmp_path / "m"), other)
    with pytest.raises(CheckpointError, match="classifier"):
        export_hf(tiny_pretrain(), tmp_path / "hf")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


# ----------------------------------------------------------------------------- original layouts


def _write_layout(tmp_path: Path, layout: str, state: dict) -> Path:
    if layout == "bare":
        path = tmp_path / "bare.pth"
        torch.save(state, path)
    elif layout in ("model", "module", "model_state"):
        path = tmp_path / f"{layout}.pth"
        torch.save({layout: state, "epoch": 7}, path)
    elif layout == "model+args":  # the original non-DeepSpeed save: command line next to the weights
        path = tmp_path / "checkpoint-99.pth"
        torch.save({"model": state, "args": argparse.Namespace(lr=1e-3, model="vit_base"), "epoch": 99}, path)
    elif layout.startswith("deepspeed"):
        folder = tmp_path / "checkpoint-best"
        folder.mkdir()
        torch.save(
            {
                "module": state,
                "ds_version": "0.9.5",
                "ds_config": {"train_batch_size": 8},
                "global_steps": 10,
            },
            folder / "mp_rank_00_model_states.pt",
        )
        path = {"deepspeed-file": folder / "mp_rank_00_model_states.pt", "deepspeed-folder": folder}.get(
            layout
        )
        if layout == "deepspeed-latest":
            (tmp_path / "latest").write_text("checkpoint-best\n")
            path = tmp_path
    else:
        raise AssertionError(layout)
    return path


@pytest.mark.parametrize(
    "layout",
    [
        "model",
        "module",
        "model_state",
        "bare",
        "model+args",
        "deepspeed-file",
        "deepspeed-folder",
        "deepspeed-latest",
    ],
)
def test_original_finetuned_checkpoint_loads_exactly(tmp_path, layout):
    state = original_finetune_state(classes=5)
    path = _write_layout(tmp_path, layout, state)
    model, report = load_classifier_with_report(path)
    assert report.new == [] and report.dropped == []
    assert report.layout == ("deepspeed" if layout.startswith("deepspeed") else "original")
    assert model.num_classes == 5 and model.config.num_heads == 3 and model.config.depth == 2
    clip = random_clip()
    assert (model.eval()(clip) - reference_classifier(state, clip, heads=3)).abs().max() <= 1e-4


def test_original_checkpoint_with_layer_scale_and_fp16(tmp_path):
    state = original_finetune_state(layer_scale=True)
    torch.save({"module": {k: v.half() for k, v in state.items()}}, tmp_path / "ls.pth")
    model, report = load_classifier_with_report(tmp_path / "ls.pth")
    assert model.config.init_values > 0 and report.new == [] and report.dropped == []
    assert any("float16" in note for note in report.notes)
    half = {k: v.half().float() for k, v in state.items()}
    clip = random_clip()
    assert (model.eval()(clip) - reference_classifier(half, clip, heads=3)).abs().max() <= 1e-4


def test_pretraining_checkpoint_to_classifier_drops_the_decoder(tmp_path):
    state = original_pretrain_state()
    torch.save({"model": state}, tmp_path / "pretrain.pth")
    model, report = load_classifier_with_report(tmp_path / "pretrain.pth", num_classes=5)
    own = model.state_dict()
    encoder_keys = [k for k in state if k.startswith("encoder.") and not k.startswith("encoder.norm.")]
    for key in encoder_keys:
        assert torch.equal(own[key.removeprefix("encoder.")], state[key]), key
    assert (
        set(report.new) == {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"} and report.new_head
    )
    assert any(name.startswith("decoder.blocks.0.") for name in report.dropped)
    assert {"mask_token", "encoder_to_decoder.weight", "encoder.norm.weight"} <= set(report.dropped)
    assert any(name.startswith("heads.") for name in report.dropped)
    assert any("new classification head" in note for note in report.notes)
    assert report.loaded == len(encoder_keys)


def test_pretraining_checkpoint_without_num_classes_gives_features(tmp_path):
    torch.save({"model": original_pretrain_state()}, tmp_path / "pretrain.pth")
    model, report = load_classifier_with_report(tmp_path / "pretrain.pth")
    assert model.num_classes == 0 and model(random_clip()).shape == (2, 192)
    assert any("num_classes=0" in note for note in report.notes)


def test_original_mme_pretraining_checkpoint_continues_pretraining(tmp_path):
    state = original_pretrain_state()
    torch.save({"model": state, "epoch": 1600}, tmp_path / "mme.pth")
    model, report = load_pretrain_model_with_report(tmp_path / "mme.pth")
    assert report.new == [] and report.dropped == []
    assert [(h.name, h.dim, h.activation) for h in model.config.heads] == [
        ("hog", 108, "sigmoid"),
        ("traj", 32, "tanh"),
    ]
    assert model.config.decoder_embed_dim == 96 and model.config.decoder_num_heads == 3
    clip, mask = random_clip(), tube_mask(2, (2, 2, 2), 3)
    expected = reference_pretrain(
        state, clip, mask, heads=3, decoder_heads=3, activations=[torch.sigmoid, torch.tanh]
    )
    out = model.eval()(clip, mask)
    # The original's HOG rows are (channel, bin, cell); the imported head predicts mme's order.
    assert (out["hog"] - expected[0][..., original_head_rows("hog", 108)]).abs().max() <= 1e-4
    assert (out["traj"] - expected[1]).abs().max() <= 1e-4


def test_videomae_pixel_checkpoint_and_new_heads(tmp_path):
    torch.save(
        {"model": original_pretrain_state(videomae=True, head_dims=(1536,))}, tmp_path / "videomae.pth"
    )
    model, report = load_pretrain_model_with_report(tmp_path / "videomae.pth")
    assert model.head_names == ["pixel"] and model.config.head_hidden_dim == 0
    assert report.new == [] and report.dropped == []
    mme_model, report = load_pretrain_model_with_report(
        tmp_path / "videomae.pth", heads=head_specs(["hog", "traj"])
    )
    assert mme_model.head_names == ["hog", "traj"] and mme_model.config.head_hidden_dim == 512
    assert set(report.dropped) == {"heads.pixel.out.weight", "heads.pixel.out.bias"}
    assert {n.split(".")[1] for n in report.new} == {"hog", "traj"}
    assert not any(n.startswith(("encoder.", "decoder.")) for n in report.new)


def test_several_decoders_are_refused_for_pretraining_but_not_for_fine_tuning(tmp_path):
    state = original_pretrain_state()
    state["encoder_to_decoder.1.weight"] = state["encoder_to_decoder.0.weight"].clone()
    state["decoder.1.norm.weight"] = state["decoder.0.norm.weight"].clone()
    torch.save({"model": state}, tmp_path / "two.pth")
    with pytest.raises(CheckpointError, match="several decoders"):
        load_pretrain_model_with_report(tmp_path / "two.pth")
    model, report = load_classifier_with_report(tmp_path / "two.pth", num_classes=3)
    assert "decoder.1.norm.weight" in report.dropped and model.num_classes == 3


# ----------------------------------------------------------------------------- errors


def test_shape_mismatch_names_the_parameter_and_both_shapes(tmp_path):
    save_model(tiny_classifier(), tmp_path / "m")
    with pytest.raises(CheckpointError) as info:
        load_classifier(tmp_path / "m", mlp_ratio=2.0)
    message = str(info.value)
    assert "blocks.0.mlp.fc1" in message and "(768, 192)" in message and "(384, 192)" in message


def test_missing_encoder_weights_are_an_error(tmp_path):
    state = original_finetune_state()
    del state["blocks.1.norm1.weight"]
    torch.save({"model": state}, tmp_path / "broken.pth")
    with pytest.raises(CheckpointError, match=r"missing.*blocks\.1\.norm1\.weight"):
        load_classifier(tmp_path / "broken.pth")


def test_not_a_checkpoint_and_unknown_layouts_name_the_file(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError) as info:
        load_classifier(text)
    assert str(text) in str(info.value) and "supported checkpoint layouts" in str(info.value)
    odd = tmp_path / "odd.pth"
    torch.save({"weights": [1, 2, 3], "step": 4}, odd)
    with pytest.raises(CheckpointError) as info:
        load_classifier(odd)
    assert str(odd) in str(info.value) and "unknown checkpoint layout" in str(info.value)
    resnet = tmp_path / "resnet.pth"
    torch.save({"model": {"conv1.weight": torch.zeros(4, 3, 7, 7)}}, resnet)
    with pytest.raises(CheckpointError, match="no video ViT encoder"):
        load_classifier(resnet)
    with pytest.raises(CheckpointError, match="no checkpoint found"):
        load_classifier(tmp_path)
    with pytest.raises(CheckpointError, match="no such file"):
        load_classifier(tmp_path / "absent.pth")
    other = tmp_path / "bert"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "bert"}))
    with pytest.raises(CheckpointError, match="'bert'"):
        load_classifier(other)


def test_unsafe_pickles_are_refused_unless_trusted(tmp_path, caplog):
    path = tmp_path / "pickled.pth"
    torch.save({"model": original_finetune_state(), "date": datetime.date(2023, 6, 1)}, path)
    with pytest.raises(CheckpointError) as info:
        load_classifier(path)
    assert "datetime.date" in str(info.value) and "trust_pickle" in str(info.value)
    with caplog.at_level(logging.WARNING, logger="mme.interop"):
        model = load_classifier(path, trust_pickle=True)
    assert model.num_classes == 5
    assert any("weights_only=False" in record.message for record in caplog.records)


def test_position_tables_in_checkpoints(tmp_path):
    state = original_finetune_state()
    state["pos_embed"] = sincos_table(1568, 192)
    torch.save({"model": state}, tmp_path / "sincos.pth")
    _, report = load_classifier_with_report(tmp_path / "sincos.pth")
    assert any("pos_embed" in note and "rebuilt" in note for note in report.notes)
    state["pos_embed"] = torch.randn(1, 1568, 192)
    torch.save({"model": state}, tmp_path / "learned.pth")
    with pytest.raises(CheckpointError, match="learned position embedding"):
        load_classifier(tmp_path / "learned.pth")


def test_unregistered_width_needs_num_heads(tmp_path):
    state = original_finetune_state(dim=64)
    torch.save(state, tmp_path / "narrow.pth")
    with pytest.raises(CheckpointError, match="num_heads"):
        load_classifier(tmp_path / "narrow.pth")
    model = load_classifier(tmp_path / "narrow.pth", num_heads=4)
    clip = random_clip()
    assert (model.eval()(clip) - reference_classifier(state, clip, heads=4)).abs().max() <= 1e-4


# ----------------------------------------------------------------------------- Hugging Face

transformers = pytest.importorskip("transformers")


def _hf_classifier(tmp_path: Path, **config) -> tuple[torch.nn.Module, Path]:
    settings = {
        "image_size": 32,
        "num_frames": 4,
        "hidden_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "intermediate_size": 256,
        "num_labels": 5,
        **config,
    }
    torch.manual_seed(0)
    model = _perturb(transformers.VideoMAEForVideoClassification(transformers.VideoMAEConfig(**settings)))
    model.save_pretrained(tmp_path / "hf")
    return model, tmp_path / "hf"


def _hf_logits(model: torch.nn.Module, clip: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(pixel_values=clip.permute(0, 2, 1, 3, 4)).logits  # HF takes (B, T, C, H, W)


def test_hf_folder_gives_the_same_logits_as_transformers(tmp_path):
    hf, folder = _hf_classifier(tmp_path)
    model, report = load_classifier_with_report(folder)
    assert report.layout == "hf" and report.new == [] and report.dropped == []
    assert (model.config.embed_dim, model.config.num_heads, model.config.norm_eps) == (64, 4, 1e-12)
    clip = random_clip()
    assert (model.eval()(clip) - _hf_logits(hf, clip)).abs().max() <= 1e-4


def test_hf_new_style_bias_names_are_read(tmp_path):
    from safetensors.torch import load_file, save_file

    hf, folder = _hf_classifier(tmp_path)
    state = load_file(folder / "model.safetensors")
    renamed = {
        k.replace("attention.attention.q_bias", "attention.attention.query.bias").replace(
            "attention.attention.v_bias", "attention.attention.value.bias"
        ): v
        for k, v in state.items()
    }
    assert renamed.keys() != state.keys()
    save_file(renamed, folder / "model.safetensors", metadata={"format": "pt"})
    clip = random_clip()
    assert (load_classifier(folder).eval()(clip) - _hf_logits(hf, clip)).abs().max() <= 1e-4


@pytest.mark.parametrize("layer_scale", [False, True])
def test_hf_export_loads_in_transformers_and_round_trips(tmp_path, layer_scale):
    model = _perturb(tiny_classifier(init_values=0.5 if layer_scale else 0.0))
    export_hf(model, tmp_path / "export")
    hf = transformers.VideoMAEForVideoClassification.from_pretrained(tmp_path / "export").eval()
    clip = random_clip()
    # HF's fc_norm eps is 1e-5 where ours is 1e-6: a difference far below the tolerance
    assert (_hf_logits(hf, clip) - model(clip)).abs().max() <= 1e-4
    back, report = load_classifier_with_report(tmp_path / "export")
    assert report.new == [] and report.dropped == []
    assert back.config.fc_norm_eps == model.config.fc_norm_eps
    if not layer_scale:
        assert _state_equal(back, model)
        assert torch.equal(back.eval()(clip), model(clip))
    else:  # the layer scale is folded into the projections
        assert back.config.init_values == 0.0
        assert (back.eval()(clip) - model(clip)).abs().max() <= 1e-5


def test_hf_pretraining_folder(tmp_path):
    config = transformers.VideoMAEConfig(
        image_size=32,
        num_frames=4,
        hidden_size=192,
        num_hidden_layers=2,
        num_attention_heads=3,
        intermediate_size=768,
        decoder_hidden_size=96,
        decoder_num_hidden_layers=1,
        decoder_num_attention_heads=3,
        decoder_intermediate_size=384,
        use_mean_pooling=False,
        layer_norm_eps=1e-6,
    )
    torch.manual_seed(0)
    hf = _perturb(transformers.VideoMAEForPreTraining(config))
    hf.save_pretrained(tmp_path / "hfpt")
    model, report = load_pretrain_model_with_report(tmp_path / "hfpt")
    assert report.new == [] and report.dropped == []
    assert model.head_names == ["pixel"] and model.config.head_hidden_dim == 0
    clip, mask = random_clip(), tube_mask(2, (2, 2, 2), 3)
    with torch.no_grad():
        expected = hf(pixel_values=clip.permute(0, 2, 1, 3, 4), bool_masked_pos=mask).logits
    # HF's decoder norm uses eps 1e-5 (ours: norm_eps 1e-6): close, not bit-equal
    assert (model.eval()(clip, mask)["pixel"] - expected).abs().max() <= 1e-3
    _, report = load_classifier_with_report(tmp_path / "hfpt", num_classes=4)
    assert "encoder.norm.weight" in report.dropped and "mask_token" in report.dropped
    assert set(report.new) == {"fc_norm.weight", "fc_norm.bias", "head.weight", "head.bias"}
