"""Process-group setup (torchrun, else one process), device selection and the collectives."""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from mme.errors import ConfigError
from mme.utils.machine import usable_cores


@dataclass(frozen=True)
class DistEnv:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def select_device(requested: str, local_rank: int = 0) -> torch.device:
    """``auto`` = ``cuda:LOCAL_RANK`` when CUDA is available, else CPU; ``cuda`` insists on it."""
    if requested not in ("auto", "cpu", "cuda"):
        raise ConfigError(f"runtime.device must be auto, cpu or cuda, got {requested!r}")
    if requested == "cpu" or (requested == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ConfigError("runtime.device is 'cuda' but no CUDA device is available")
    if local_rank >= torch.cuda.device_count():
        raise ConfigError(
            f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA devices are visible"
        )
    return torch.device("cuda", local_rank)


def cpu_threads(workers: int, local_world_size: int = 1) -> int | None:
    """CPU intra-op threads: cores the loader workers leave, per local rank (more make OpenMP thrash)."""
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return max(1, usable_cores() // max(local_world_size, 1) - workers)


def setup_device(requested: str, local_rank: int = 0) -> torch.device:
    """:func:`select_device`, made current, with TF32 and cuDNN autotuning on."""
    device = select_device(requested, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    return device


def init_distributed(requested_device: str = "auto", timeout_min: int = 30) -> DistEnv:
    """Join torchrun's process group when launched by it, else run as one process."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = setup_device(requested_device, local_rank)
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(
            backend=backend,
            timeout=datetime.timedelta(minutes=timeout_min),
            device_id=device if device.type == "cuda" else None,
        )
    return DistEnv(rank=rank, world_size=world_size, local_rank=local_rank, device=device)


def shutdown_distributed(wait_for_peers: bool = True) -> None:
    if dist.is_available() and dist.is_initialized():
        # After a finished job every rank waits for the others before tearing its group down: a
        # gloo rank whose peer destroyed the group first can abort at exit ("terminate called
        # without an active exception", seen in the two-process test). Not after an error, where
        # a peer may never arrive.
        if wait_for_peers:
            dist.barrier()
        dist.destroy_process_group()


def all_reduce_mean(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average scalar metrics over ranks (identity in a single process)."""
    if not (dist.is_available() and dist.is_initialized()) or not values:
        return values
    keys = sorted(values)
    packed = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(packed)
    packed /= dist.get_world_size()
    return dict(zip(keys, packed.tolist(), strict=True))


def gather_to_main(obj: Any) -> list[Any] | None:
    """Collect one picklable object from every rank on rank 0 (``None`` elsewhere)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] | None = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def broadcast_from_main(obj: Any) -> Any:
    if not (dist.is_available() and dist.is_initialized()):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]
