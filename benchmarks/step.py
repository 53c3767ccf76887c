"""Clips/s of one MME pre-training step, next to a plain VideoMAE-style implementation.

One step = forward, backward and AdamW on a batch of 16x224x224 clips with a tube mask of ratio
0.7 (1096 of 1568 tokens hidden), decoder width 192 / depth 1, heads hog + traj, MSE losses.
For each model size and precision (fp32, bf16 autocast) it times ``mme.models`` and the baseline
in ``benchmarks/baseline_vit.py`` (explicit ``softmax(q k^T) v`` attention, PyTorch's default
AdamW; mme uses the trainer's fused AdamW), counts the model
FLOPs, measures the machine's GEMM rate on transformer-shaped matmuls, and reports the fraction
of that rate the step achieves. The implementations of one size and precision take steps in
turn, between two GEMM measurements (the faster counts), so that on a shared machine they see
the same load.

FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` on one forward pass (matmuls, convolutions),
plus the attention products ``4 N^2 D`` per layer by formula, because the counter does not see
the fused CPU attention kernel; the baseline's explicit matmuls are counted directly as a
cross-check. A training step is counted as 3x the forward (backward = 2x forward).

    python benchmarks/step.py --quick --out step.json          # a few minutes on a laptop CPU
    python benchmarks/step.py --device cuda --batch 16 --out step-cuda.json
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

sys.path.insert(0, str(Path(__file__).resolve().parent))
from baseline_vit import PlainPretrainModel
from mme.models import create_model
from mme.train.optim import fused_adamw_for
from mme.utils.atomic import atomic_write_json
from mme.utils.logging import Progress

SIZES = {"small": (384, 12, 6), "base": (768, 12, 12)}
FRAMES, IMAGE, MASK_RATIO = 16, 224, 0.7
GRID = (FRAMES // 2, IMAGE // 16, IMAGE // 16)
NUM_TOKENS = GRID[0] * GRID[1] * GRID[2]
HEAD_DIMS = {"hog": 108, "traj": 32}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--sizes", default="small,base", help="comma-separated: small, base")
    parser.add_argument("--dtypes", default="fp32,bf16", help="comma-separated: fp32, bf16 (autocast)")
    parser.add_argument(
        "--impls", default="mme,baseline", help="comma-separated: mme, baseline, mme-compiled"
    )
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1 warmup and 2 timed steps per configuration")
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="profile one more step per run: time shares (GEMMs, attention, optimiser, rest) and the "
        "rate the step's own GEMMs reach, which bounds the whole step's fraction of the GEMM rate "
        "(CPU only: it reads the profiler's CPU times)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if args.breakdown and args.device != "cpu":
        parser.error("--breakdown reads the profiler's CPU times; it is for --device cpu only")
    if args.quick:
        args.warmup, args.iters = 1, 2
    return args


# ----------------------------------------------------------------------------- machine


def machine_info(device: torch.device) -> dict:
    info = {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "cpu_model": _lscpu_field("Model name"),
        "native_bf16": native_bf16(device),
        "load_average_start": os.getloadavg(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _lscpu_field(name: str) -> str | None:
    try:
        output = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    for line in output.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == name:
            return value.strip()
    return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_rate(dtype: torch.dtype, device: torch.device, dims: list[int], tokens: int) -> dict:
    """Best and mean TFLOP/s of the GEMMs a transformer layer runs (qkv, fc1, fc2) at these widths.

    Each shape is timed as ``F.linear`` (what the layers call) and as a plain ``@``; the faster
    counts, since some CPUs take very different paths for the two in bf16.
    """
    rates = {}
    for dim in dims:
        for name, (m, k, n) in {
            "qkv": (tokens, dim, 3 * dim),
            "fc1": (tokens, dim, 4 * dim),
            "fc2": (tokens, 4 * dim, dim),
        }.items():
            x = torch.randn(m, k, device=device, dtype=dtype)
            weight = torch.randn(n, k, device=device, dtype=dtype)
            bias = torch.randn(n, device=device, dtype=dtype)
            weight_t = weight.t().contiguous()
            flops = 2 * m * k * n
            rates[f"{name}_d{dim}_linear"] = flops / _time_op(F.linear, (x, weight, bias), device) / 1e12
            rates[f"{name}_d{dim}_mm"] = flops / _time_op(torch.mm, (x, weight_t), device) / 1e12
    return {
        "best_tflops": max(rates.values()),
        "mean_tflops": statistics.mean(rates.values()),
        "shapes": rates,
    }


def _time_op(fn, inputs: tuple, device: torch.device, min_seconds: float = 0.5) -> float:
    fn(*inputs)
    _sync(device)
    reps, start = 0, time.perf_counter()
    while time.perf_counter() - start < min_seconds or reps < 3:
        fn(*inputs)
        reps += 1
        _sync(device)
    return (time.perf_counter() - start) / reps


def native_bf16(device: torch.device) -> bool:
    """Whether bf16 matmuls have hardware support (GPUs; CPUs with AVX512-BF16 or AMX)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())


# ----------------------------------------------------------------------------- models and data


def tube_mask(batch: int, generator: torch.Generator) -> torch.Tensor:
    t, h, w = GRID
    masked = int(MASK_RATIO * h * w)
    spatial = torch.zeros(batch, h * w, dtype=torch.bool)
    for b in range(batch):
        spatial[b, torch.randperm(h * w, generator=generator)[:masked]] = True
    return spatial.repeat(1, t)


def build(impl: str, size: str) -> torch.nn.Module:
    dim, depth, heads = SIZES[size]
    if impl.startswith("mme"):
        return create_model(f"mme_vit_{size}_patch16_224", decoder_num_heads=6)
    return PlainPretrainModel(dim, depth, heads, decoder_dim=192, decoder_depth=1, decoder_heads=6)


def forward_flops(model: torch.nn.Module, clip: torch.Tensor, mask: torch.Tensor) -> int:
    """Forward FLOPs of one batch: the counter's, plus the fused attention products by formula
    when the counter does not see the attention kernel (the CPU flash kernel; CUDA ones are counted)."""
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(clip, mask)
    flops = counter.get_total_flops()
    counted_ops = {str(op) for op in counter.get_flop_counts().get("Global", {})}
    uses_sdpa = hasattr(model, "config")  # mme's model; the baseline's explicit matmuls are counted
    if uses_sdpa and not any("scaled_dot_product" in op for op in counted_ops):
        batch = clip.shape[0]
        visible = NUM_TOKENS - int(mask[0].sum())
        cfg = model.config
        encoder = cfg.encoder.depth * batch * 4 * visible**2 * cfg.encoder.embed_dim  # q k^T and attn v
        decoder = cfg.decoder_depth * batch * 4 * NUM_TOKENS**2 * cfg.decoder_embed_dim  # on all tokens
        flops += encoder + decoder
    return flops


# aten ops that are GEMMs, by the names FlopCounterMode and the profiler (after "aten::") use.
GEMM_OPS = {"mm", "addmm", "bmm", "baddbmm", "_addmm_activation",
            "convolution", "mkldnn_convolution", "convolution_backward"}  # fmt: skip


def step_breakdown(runner: StepRunner) -> dict:
    """Where one step's time goes, from ``torch.profiler`` self times, and the GEMMs' own rate.

    The GEMM FLOPs (forward and backward: mm, addmm, bmm, convolutions) come from
    ``FlopCounterMode`` on a separate step; divided by the GEMMs' profiled time they give the rate
    PyTorch's GEMMs reach on the step's real shapes (backward ones included). The whole step can
    only beat that rate by running its other FLOPs (attention) faster than the GEMMs do, so it is
    the practical ceiling of the step's fraction of the measured GEMM rate.
    """
    with FlopCounterMode(display=False) as counter:
        runner.step()
    gemm_flops = sum(
        count
        for op, count in counter.get_flop_counts().get("Global", {}).items()
        if str(op).split(".")[-1] in GEMM_OPS
    )
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        wall = runner.step()
    seconds = {"gemm": 0.0, "attention": 0.0, "optimizer": 0.0}
    total = 0.0
    for event in prof.key_averages():
        self_s = event.self_cpu_time_total / 1e6
        total += self_s
        if event.key.removeprefix("aten::") in GEMM_OPS:
            seconds["gemm"] += self_s
        elif "scaled_dot_product" in event.key or "flash_attention" in event.key:
            seconds["attention"] += self_s
        elif event.key.startswith("Optimizer.step#"):
            seconds["optimizer"] = event.cpu_time_total / 1e6  # the optimiser's ops, children included
    seconds["other"] = max(total - sum(seconds.values()), 0.0)
    return {
        "profiled_step_seconds": wall,
        "seconds": seconds,
        "shares": {name: value / total for name, value in seconds.items()},
        "gemm_gflops_per_step": gemm_flops / 1e9,
        "gemm_tflops": gemm_flops / seconds["gemm"] / 1e12 if seconds["gemm"] else None,
    }


class StepRunner:
    """One implementation's model, optimiser and batch; ``step()`` runs and times one training step."""

    def __init__(self, impl: str, size: str, batch: int, dtype: str, device: torch.device) -> None:
        torch.manual_seed(0)
        self.device = device
        self.model = build(impl, size).to(device).train()
        gen = torch.Generator().manual_seed(1)
        probe_clip = torch.randn(1, 3, FRAMES, IMAGE, IMAGE, generator=gen).to(device)
        self.flops_fwd = forward_flops(self.model, probe_clip, tube_mask(1, gen).to(device))
        if impl == "mme-compiled":
            self.model = torch.compile(self.model)
        self.clip = torch.randn(batch, 3, FRAMES, IMAGE, IMAGE, generator=gen).to(device)
        self.mask = tube_mask(batch, gen).to(device)
        masked = int(self.mask[0].sum())
        self.targets = {
            n: torch.rand(batch, masked, w, generator=gen).to(device) for n, w in HEAD_DIMS.items()
        }
        # mme steps with the trainer's optimiser (fused AdamW, on CPU too); the baseline with
        # PyTorch's default AdamW (a loop over parameters on CPU), as VideoMAE's training does.
        fused = fused_adamw_for(device) if impl.startswith("mme") else None
        self.optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=1.5e-4, betas=(0.9, 0.95), weight_decay=0.05, fused=fused
        )
        self.autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=dtype == "bf16")

    def step(self) -> float:
        _sync(self.device)
        start = time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        with self.autocast:
            out = self.model(self.clip, self.mask)
            loss = sum(F.mse_loss(out[name].float(), self.targets[name]) for name in HEAD_DIMS)
        loss.backward()
        self.optimizer.step()
        _sync(self.device)
        return time.perf_counter() - start


# ----------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sizes = [s for s in args.sizes.split(",") if s]
    dtypes = [d for d in args.dtypes.split(",") if d]
    impls = [i for i in args.impls.split(",") if i]
    results: dict = {"machine": machine_info(device), "settings": vars(args) | {"out": str(args.out)}}
    machine = results["machine"]
    print(f"machine: {machine['cpu_model']} ({machine['torch_threads']} threads), device {device}")

    tokens = args.batch * (NUM_TOKENS - int(MASK_RATIO * GRID[1] * GRID[2]) * GRID[0])
    if not machine["native_bf16"] and "bf16" in dtypes:
        print("note: no native bf16 matmul on this machine (emulated): bf16 is timed 1 warmup + 2 steps")
    results["matmul"] = {}
    runs = []
    groups = [(size, dtype) for size in sizes for dtype in dtypes]
    with Progress(len(groups) * len(impls), "benchmark", unit="config", every_s=0.0) as bar:
        for size, dtype in groups:
            # The implementations of one (size, dtype) run step by step in turn, right after the
            # GEMM rate is measured, so that they share the machine's load (it is shared here).
            runners = {impl: StepRunner(impl, size, args.batch, dtype, device) for impl in impls}
            torch_dtype = torch.float32 if dtype == "fp32" else torch.bfloat16
            matmul = matmul_rate(torch_dtype, device, [SIZES[size][0]], tokens)
            warmup, iters = args.warmup, args.iters
            if dtype == "bf16" and not machine["native_bf16"]:
                warmup, iters = 1, min(iters, 2)
            times: dict[str, list[float]] = {impl: [] for impl in impls}
            for index in range(warmup + iters):
                for impl, runner in runners.items():
                    seconds = runner.step()
                    if index >= warmup:
                        times[impl].append(seconds)
            # Measured again after the steps; the faster of the two is the machine's rate.
            after = matmul_rate(torch_dtype, device, [SIZES[size][0]], tokens)
            if after["best_tflops"] > matmul["best_tflops"]:
                matmul = after
            results["matmul"][f"{size}_{dtype}"] = matmul
            for impl, runner in runners.items():
                # The median is the headline; the best step shows the machine's capability under load.
                clips_per_s = args.batch / statistics.median(times[impl])
                achieved = 3 * runner.flops_fwd * clips_per_s / 1e12
                run = {
                    "size": size,
                    "dtype": dtype,
                    "impl": impl,
                    "batch": args.batch,
                    "step_seconds": times[impl],
                    "clips_per_s": clips_per_s,
                    "clips_per_s_best": args.batch / min(times[impl]),
                    "gflops_per_clip_fwd": runner.flops_fwd / 1e9,
                    "gflops_per_clip_step": 3 * runner.flops_fwd / 1e9,
                    "achieved_tflops": achieved,
                    "matmul_tflops": matmul["best_tflops"],
                    "fraction_of_matmul_rate": achieved / matmul["best_tflops"],
                }
                if args.breakdown:
                    run["breakdown"] = step_breakdown(runner)
                    gemm_rate = run["breakdown"]["gemm_tflops"]
                    run["breakdown"]["gemm_fraction_of_matmul_rate"] = (
                        gemm_rate / matmul["best_tflops"] if gemm_rate else None
                    )
                runs.append(run)
                bar.update(size=size, dtype=dtype, impl=impl, clips_s=round(clips_per_s, 3))
            del runners
    results["runs"] = runs
    results["machine"]["load_average_end"] = os.getloadavg()

    header = ("size", "dtype", "impl", "clips/s", "best", "GFLOP/clip", "GFLOP/s", "GEMM", "of GEMM")
    print("\n{:6} {:5} {:13} {:>8} {:>8} {:>11} {:>8} {:>8} {:>8}".format(*header))
    for run in runs:
        print(
            f"{run['size']:6} {run['dtype']:5} {run['impl']:13} {run['clips_per_s']:8.3f} "
            f"{run['clips_per_s_best']:8.3f} {run['gflops_per_clip_step']:11.1f} "
            f"{run['achieved_tflops'] * 1e3:8.1f} {run['matmul_tflops'] * 1e3:8.1f} "
            f"{run['fraction_of_matmul_rate']:8.1%}"
        )
    if args.breakdown:
        print("\n{:6} {:5} {:13} {:>6} {:>6} {:>6} {:>6} {:>10} {:>8}".format(
            "size", "dtype", "impl", "GEMM", "attn", "optim", "rest", "GEMM GF/s", "of GEMM"))  # fmt: skip
        for run in runs:
            b = run["breakdown"]
            shares = " ".join(f"{b['shares'][k]:6.0%}" for k in ("gemm", "attention", "optimizer", "other"))
            print(
                f"{run['size']:6} {run['dtype']:5} {run['impl']:13} {shares} "
                f"{b['gemm_tflops'] * 1e3:10.1f} {b['gemm_fraction_of_matmul_rate']:8.1%}"
            )
    if args.out is not None:
        atomic_write_json(args.out, results)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
