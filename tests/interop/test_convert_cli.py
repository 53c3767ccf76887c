"""`mme convert` end to end through the command dispatcher."""

from __future__ import annotations

import json

import torch
from model_helpers import original_pretrain_state, random_clip, tiny_classifier, tube_mask

from mme.cli.main import main
from mme.interop import load_classifier, load_pretrain_model
from mme.models import save_model


def test_convert_original_pretraining_checkpoint_to_mme_and_hf(tmp_path, capsys):
    state = original_pretrain_state()
    torch.save({"model": state}, tmp_path / "pretrain.pth")

    assert main(["convert", str(tmp_path / "pretrain.pth"), str(tmp_path / "mme"), "--num-classes", "6"]) == 0
    model = load_classifier(tmp_path / "mme")
    assert model.num_classes == 6
    assert torch.equal(model.blocks[0].attn.qkv.weight, state["encoder.blocks.0.attn.qkv.weight"])
    events = [json.loads(line) for line in (tmp_path / "mme" / "convert.jsonl").read_text().splitlines()]
    assert [e["kind"] for e in events] == ["start", "load_report", "done"]
    report = events[1]["report"]
    assert "head.weight" in report["new"] and "mask_token" in report["dropped"]
    assert "newly initialised" in (tmp_path / "mme" / "convert.log").read_text()

    assert main(["convert", str(tmp_path / "mme"), str(tmp_path / "hf"), "--to", "hf"]) == 0
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert (
        config["model_type"] == "videomae" and config["hidden_size"] == 192 and len(config["id2label"]) == 6
    )
    back = load_classifier(tmp_path / "hf")
    clip = random_clip()
    assert torch.equal(back.eval()(clip), model.eval()(clip))

    assert main(["convert", str(tmp_path / "pretrain.pth"), str(tmp_path / "pt"), "--pretrain"]) == 0
    pretrain = load_pretrain_model(tmp_path / "pt")
    assert pretrain.head_names == ["hog", "traj"]
    assert pretrain(clip, tube_mask(2, (2, 2, 2), 2))["traj"].shape == (2, 4, 32)


def test_convert_reads_heads_named_alone_from_the_target_registry(tmp_path):
    torch.save({"model": original_pretrain_state()}, tmp_path / "pretrain.pth")
    # pixel (a head the checkpoint lacks) named alone: width and activation from the target registry
    heads = "heads=[pixel, {name: traj, dim: 32, activation: tanh}]"
    argv = ["convert", str(tmp_path / "pretrain.pth"), str(tmp_path / "pt"), "--pretrain", "--set", heads]
    assert main(argv) == 0
    config = load_pretrain_model(tmp_path / "pt").config
    assert [(h.name, h.dim, h.activation) for h in config.heads] == [
        ("pixel", 1536, "identity"),
        ("traj", 32, "tanh"),
    ]


def test_convert_refuses_to_overwrite_and_reports_errors(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("MME_DEBUG", raising=False)
    save_model(tiny_classifier(), tmp_path / "src")
    (tmp_path / "dst").mkdir()
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "dst")]) == 1
    assert "already exists" in capsys.readouterr().err
    assert (
        main(["convert", str(tmp_path / "src"), str(tmp_path / "dst"), "--force", "--set", "num_frames=8"])
        == 0
    )
    assert load_classifier(tmp_path / "dst").config.num_frames == 8

    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "x"), "--set", "depht=3"]) == 1
    assert "'depht'" in capsys.readouterr().err
    assert main(["convert", str(tmp_path / "src"), str(tmp_path / "x"), "--to", "hf", "--pretrain"]) == 1
    assert "--pretrain" in capsys.readouterr().err
    (tmp_path / "junk.bin").write_bytes(b"\x00not a checkpoint")
    assert main(["convert", str(tmp_path / "junk.bin"), str(tmp_path / "x")]) == 1
    err = capsys.readouterr().err
    assert "junk.bin" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dst", "junk.bin", "src"]


def test_convert_to_hf_writes_class_names_and_preprocessing(tmp_path):
    from mme.models import model_config_dict

    model = tiny_classifier()
    model.class_names = ["up", "down", "left", "right", "still"]
    checkpoint = {"model": model.state_dict(), "model_config": model_config_dict(model)}
    torch.save(checkpoint, tmp_path / "best.pt")  # what `mme finetune` writes, reduced to its model

    assert main(["convert", str(tmp_path / "best.pt"), str(tmp_path / "hf"), "--to", "hf"]) == 0
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["id2label"] == {"0": "up", "1": "down", "2": "left", "3": "right", "4": "still"}
    assert config["label2id"] == {"up": 0, "down": 1, "left": 2, "right": 3, "still": 4}
    processor = json.loads((tmp_path / "hf" / "preprocessor_config.json").read_text())
    assert processor["image_processor_type"] == "VideoMAEImageProcessor"
    assert processor["size"] == {"shortest_edge": 32}
    assert processor["crop_size"] == {"height": 32, "width": 32}
    assert processor["image_mean"] == [0.485, 0.456, 0.406]
    assert processor["image_std"] == [0.229, 0.224, 0.225]
    assert processor["num_frames"] == 4 and config["num_frames"] == 4
