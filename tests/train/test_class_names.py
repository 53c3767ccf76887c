"""Class names: from the dataset's classes.json (or data.classes_file) into the fine-tuning
checkpoints, the model folder, the evaluation files and the Hugging Face export."""

from __future__ import annotations

import csv
import json
import shutil

import pytest
from train_helpers import run_mme, tiny_eval, tiny_finetune

from mme.train.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def finetuned(synthetic_data, tmp_path_factory):
    """One epoch of tiny fine-tuning on the synthetic data, whose `mme synth` wrote classes.json."""
    out = tmp_path_factory.mktemp("finetune") / "run"
    assert run_mme(tiny_finetune(synthetic_data, out, "schedule.epochs=1")) == 0
    return out


def _per_class(folder):
    return list(json.loads((folder / "eval.json").read_text())["per_class_accuracy"])


def test_finetune_carries_the_dataset_class_names(synthetic_data, finetuned):
    names = json.loads((synthetic_data / "classes.json").read_text())
    assert len(names) == 3
    assert load_checkpoint(finetuned / "checkpoints" / "best.pt")["model_config"]["class_names"] == names
    assert json.loads((finetuned / "model" / "config.json").read_text())["class_names"] == names
    assert _per_class(finetuned / "eval") == names
    with open(finetuned / "eval" / "confusion.csv", newline="") as handle:
        assert next(csv.reader(handle))[1:] == names
    assert f"class names from {synthetic_data / 'classes.json'}" in (finetuned / "finetune.log").read_text()


def test_eval_names_classes_from_the_checkpoint_or_a_file(synthetic_data, finetuned, tmp_path, capsys):
    names = json.loads((synthetic_data / "classes.json").read_text())
    # a test list with no classes.json beside it: the names come from the checkpoint
    lists = tmp_path / "lists"
    lists.mkdir()
    shutil.copy(synthetic_data / "test.csv", lists / "test.csv")
    checkpoint = finetuned / "checkpoints" / "best.pt"
    base = [f"data.test_list={lists / 'test.csv'}", f"data.root={synthetic_data}"]
    assert run_mme(tiny_eval(synthetic_data, checkpoint, tmp_path / "ev", *base)) == 0
    assert _per_class(tmp_path / "ev") == names
    # an explicit file (one name per line) wins over the checkpoint's names
    (tmp_path / "names.txt").write_text("first\nsecond\n\nthird\n")
    given = f"data.classes_file={tmp_path / 'names.txt'}"
    assert run_mme(tiny_eval(synthetic_data, checkpoint, tmp_path / "ev2", *base, given)) == 0
    assert _per_class(tmp_path / "ev2") == ["first", "second", "third"]
    # a file of another length is an error naming both numbers, before anything is written
    (tmp_path / "two.json").write_text('["a", "b"]')
    wrong = f"data.classes_file={tmp_path / 'two.json'}"
    capsys.readouterr()
    assert run_mme(tiny_eval(synthetic_data, checkpoint, tmp_path / "ev3", *base, wrong)) == 1
    err = capsys.readouterr().err
    assert f"{tmp_path / 'two.json'} (data.classes_file) names 2 classes, but {checkpoint} predicts 3" in err
    assert not (tmp_path / "ev3" / "config.yaml").exists()


def test_finetune_refuses_class_names_of_another_count(synthetic_data, tmp_path, capsys):
    (tmp_path / "four.json").write_text('["a", "b", "c", "d"]')
    args = tiny_finetune(synthetic_data, tmp_path / "ft", f"data.classes_file={tmp_path / 'four.json'}")
    capsys.readouterr()
    assert run_mme(args) == 1
    err = capsys.readouterr().err
    assert "names 4 classes, but data.num_classes (or the largest train label + 1) is 3" in err
    assert "Traceback" not in err and not (tmp_path / "ft" / "config.yaml").exists()


def test_hf_export_of_a_finetuning_checkpoint_has_its_class_names(synthetic_data, finetuned, tmp_path):
    names = json.loads((synthetic_data / "classes.json").read_text())
    checkpoint = finetuned / "checkpoints" / "best.pt"
    assert run_mme(["convert", str(checkpoint), str(tmp_path / "hf"), "--to", "hf"]) == 0
    config = json.loads((tmp_path / "hf" / "config.json").read_text())
    assert config["id2label"] == {str(i): name for i, name in enumerate(names)}
    assert (tmp_path / "hf" / "preprocessor_config.json").is_file()
