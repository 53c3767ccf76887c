"""Same numbers: fixed-seed runs repeat bit for bit, and the Trainer computes what a plain loop over
the same pieces computes (benchmarks/reproducibility.py compares two versions of the code)."""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from train_helpers import final_weights, read_jsonl, run_mme, tiny_pretrain

from mme.data.loader import pretrain_loader, to_device
from mme.data.transforms import normalize_clip
from mme.objectives import build_targets, masked_loss
from mme.tasks.pretrain import pretrain_model
from mme.train.distributed import DistEnv, cpu_threads
from mme.train.optim import build_adamw, fused_adamw_for, param_groups, scaled_lr
from mme.train.run import seed_everything
from mme.train.run_config import PretrainConfig, load_run_config
from mme.train.trainer import CosineSchedule, apply_schedules

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
import reproducibility


def test_fixed_seed_pretraining_and_finetuning_repeat_bit_for_bit(synthetic_data, tmp_path):
    first = reproducibility.reproduce(synthetic_data, tmp_path / "first")
    second = reproducibility.reproduce(synthetic_data, tmp_path / "second")
    assert len(first["pretrain"]["numbers"]["train"]) == first["pretrain"]["steps"] == 12
    assert len(first["finetune"]["numbers"]["train"]) == first["finetune"]["steps"] == 6
    assert first["pretrain"]["model"] and first["finetune"]["optimizer"]
    assert reproducibility.differences(first, second) == []


def test_the_trainer_computes_what_a_plain_loop_over_the_pieces_computes(synthetic_data, tmp_path):
    """The composition of the jobs before the Trainer ran any task: per micro-batch, to the device,
    normalise, forward, targets, masked loss, backward, AdamW step with the scheduled lr and wd."""
    out = tmp_path / "run"
    assert run_mme(tiny_pretrain(synthetic_data, out, "schedule.warmup_epochs=1")) == 0
    logged = [record["loss"] for record in read_jsonl(out / "pretrain.jsonl", "train")]

    config = load_run_config(PretrainConfig, out / "config.yaml")
    device = torch.device("cpu")
    threads_before = torch.get_num_threads()
    threads = cpu_threads(config.runtime.workers)  # what the job's Run sets
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        seed_everything(config.runtime.seed)
        model = pretrain_model(config)
        env = DistEnv(rank=0, world_size=1, local_rank=0, device=device)
        _, loader, sampler = pretrain_loader(config, env)
        optim, epochs = config.optim, config.schedule.epochs
        steps = sampler.batches_per_epoch
        lr = [scaled_lr(value, config.batch.per_gpu, optim.reference_batch)
              for value in (optim.base_lr, optim.min_lr, optim.warmup_lr)]  # fmt: skip
        lr_schedule = CosineSchedule(lr[0], lr[1], epochs * steps, steps, lr[2])
        wd_end = optim.weight_decay if optim.weight_decay_end is None else optim.weight_decay_end
        wd_schedule = CosineSchedule(optim.weight_decay, wd_end, epochs * steps)
        groups = param_groups(model, optim.weight_decay)
        optimizer = build_adamw(
            groups, lr[0], betas=tuple(optim.betas), eps=optim.eps, fused=fused_adamw_for(device)
        )
        targets_config = config.target_config()
        losses, step = [], 0
        model.train()
        for epoch in range(epochs):
            sampler.start(epoch)
            for index, host_batch in enumerate(loader):
                if index == steps:
                    break
                apply_schedules(optimizer, step, lr_schedule, wd_schedule)
                batch = to_device(host_batch, device)
                clip, mask = normalize_clip(batch["clip"]), batch["mask"]
                targets = build_targets(config.predict, {**batch, "clip": clip}, targets_config)
                loss, _ = masked_loss(model(clip, mask), targets, mask)
                loss.backward()
                optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                losses.append(float(loss.detach()))
                step += 1
    finally:
        torch.set_num_threads(threads_before)

    assert len(losses) == 8 and losses == logged
    trained = final_weights(out)
    assert all(torch.equal(trained[name], value) for name, value in model.state_dict().items())
