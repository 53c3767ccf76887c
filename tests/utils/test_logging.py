"""Run logs: a human log and a JSON-lines log side by side; progress reports rate and ETA."""

from __future__ import annotations

import json
import logging

from mme.utils.logging import Progress, RunLog, format_duration


def test_runlog_writes_text_and_json_lines(tmp_path):
    with RunLog(tmp_path, name="train") as log:
        log.metrics("train", step=3, loss=0.5, lr=1e-4)
        log.event("done", human="all done", clips=12)
    records = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert [r["kind"] for r in records] == ["train", "done"]
    assert records[0]["step"] == 3 and records[0]["loss"] == 0.5
    text = (tmp_path / "train.log").read_text()
    assert "[train 3] loss=0.5" in text and "all done" in text


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
