"""Run logs: a human log and a JSON-lines log side by side; progress reports rate and ETA."""

from __future__ import annotations

import json
import logging

import pytest

from mme.utils.logging import Progress, RunLog, current_records, format_duration, format_values


def test_runlog_writes_text_and_json_lines(tmp_path):
    with RunLog(tmp_path, name="train") as log:
        log.metrics("train", step=3, epoch=0, loss=0.5, lr=1e-4)
        log.metrics("epoch", step=4, epoch=0, loss=100 / 3)
        log.event("done", human="all done", clips=12)
    records = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records] == ["train", "epoch", "done"]
    assert records[0]["step"] == 3 and records[0]["epoch"] == 0 and records[0]["loss"] == 0.5
    assert records[1]["loss"] == 100 / 3  # JSON keeps full precision
    text = (tmp_path / "train.log").read_text()
    # step and epoch each under its own name; people get 4 significant digits
    assert "[train] step=3 epoch=0 loss=0.5 lr=0.0001" in text
    assert "[epoch] step=4 epoch=0 loss=33.33\n" in text and "all done" in text


def test_format_values_rounds_floats_for_people():
    assert format_values({"top1": 100 / 3, "steps": 8, "final": {"loss": 0.123456789}}) == (
        "top1=33.33 steps=8 final={loss=0.1235}"
    )


def test_deferred_files_appear_with_what_was_held_or_not_at_all(tmp_path):
    with RunLog(tmp_path / "failed", name="job", defer_files=True) as log:
        log.info("checking inputs")
        log.event("resume", step=2)
    assert not (tmp_path / "failed").exists()  # a job that failed before starting leaves nothing

    with RunLog(tmp_path / "ok", name="job", defer_files=True) as log:
        log.info("checking inputs")
        log.event("early", step=1)
        log.open_files()
        log.event("late", human="started")
    assert "checking inputs" in (tmp_path / "ok" / "job.log").read_text().splitlines()[0]
    lines = (tmp_path / "ok" / "job.jsonl").read_text().splitlines()
    assert [json.loads(line)["kind"] for line in lines] == ["early", "late"]


def test_current_records_drop_the_steps_a_resumed_job_redid():
    records = [
        {"kind": "start"},
        *({"kind": "train", "step": s, "epoch": 0} for s in (1, 2, 3)),
        {"kind": "checkpoint", "step": 2},
        {"kind": "epoch", "step": 3, "epoch": 0},
        {"kind": "interrupted", "step": 3, "epoch": 1},
        {"kind": "start"},
        {"kind": "resume", "step": 2, "epoch": 0, "checkpoint": "step-00000002.pt"},
        *({"kind": "train", "step": s, "epoch": 0} for s in (3, 4)),
    ]
    kept = current_records(records)
    assert [(r["kind"], r.get("step")) for r in kept] == [
        ("start", None),
        ("train", 1),
        ("train", 2),
        ("checkpoint", 2),
        ("interrupted", 3),
        ("start", None),
        ("resume", 2),
        ("train", 3),
        ("train", 4),
    ]
    assert kept[-2] is records[-2]  # the redone step 3, not the one logged before the interrupt


def test_non_main_rank_writes_no_files(tmp_path):
    with RunLog(tmp_path / "rank1", name="train", is_main=False) as log:
        log.metrics("train", step=1, loss=1.0)
    assert not (tmp_path / "rank1").exists()


def test_progress_logs_rate_and_eta(caplog):
    logger = logging.getLogger("mme.test_progress")
    logger.propagate = True
    with (
        caplog.at_level(logging.INFO, logger="mme.test_progress"),
        Progress(total=4, desc="extract", unit="video", logger=logger, every_s=0.0) as bar,
    ):
        for _ in range(4):
            bar.update()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[-1].startswith("extract: 4/4 (100%)")
    assert "video/s" in lines[-1] and "ETA 0m00s" in lines[-1]


def _fake_clock(monkeypatch) -> list[float]:
    now = [0.0]
    monkeypatch.setattr("mme.utils.logging.time.perf_counter", lambda: now[0])
    return now


def test_progress_shows_the_whole_runs_eta(monkeypatch, caplog):
    now = _fake_clock(monkeypatch)
    logger = logging.getLogger("mme.test_run_eta")
    logger.propagate = True
    with (
        caplog.at_level(logging.INFO, logger="mme.test_run_eta"),
        Progress(total=4, desc="epoch 1", unit="batch", logger=logger, every_s=0.0, later=8) as bar,
    ):
        for second in (1.0, 2.0):
            now[0] = second
            bar.update()
    # 2 of this epoch's 4 batches done in 2 s: 2 s left in the epoch, 2 + 8 in the run
    assert caplog.records[-1].getMessage() == (
        "epoch 1: 2/4 (50%) 1.00 batch/s elapsed 0m02s ETA 0m02s run ETA 0m10s"
    )


@pytest.mark.parametrize(("later", "tail"), [(None, "ETA 0m02s"), (0, "ETA 0m02s run ETA 0m02s")])
def test_progress_without_later_items(monkeypatch, later, tail):
    now = _fake_clock(monkeypatch)
    bar = Progress(total=4, desc="eval", disable=True, later=later)
    now[0] = 2.0
    bar.update(2)
    assert bar.summary().endswith(tail)


def test_format_duration():
    assert format_duration(3725) == "1h02m05s"
    assert format_duration(59.4) == "0m59s"
    assert format_duration(float("inf")) == "?"


def test_console_follows_the_current_stderr(monkeypatch, capsys):
    import io

    from mme.utils.logging import get_logger

    logger = get_logger("mme.stderr_check")
    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    logger.warning("to the first stream")
    first.close()  # what pytest does to a capture stream between tests
    second = io.StringIO()
    monkeypatch.setattr("sys.stderr", second)
    logger.warning("to the second stream")
    assert "to the second stream" in second.getvalue()
