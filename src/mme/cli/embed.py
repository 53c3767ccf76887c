"""Features of a frozen encoder for every video, in safetensors shards with an index.

    mme embed --checkpoint runs/pretrain/model --list data/csv/ucf101/train.csv --out feats/ucf101-train
    torchrun --nproc_per_node 8 -m mme.cli.main embed --checkpoint ... --list ... --out ...
    mme embed --checkpoint ... clips/ --out feats/clips --pool tokens --clips 2 --crops 3 --per-view

CHECKPOINT is anything mme.models.load_classifier reads, pre-training checkpoints included (the
encoder; a head, if any, is not used). --pool mean: fc_norm of the mean of the last block's
tokens (what the linear probe uses, model.forward_features); cls-free: the same mean without
fc_norm; tokens: the whole token grid (N x D). Views (--clips x --crops, default 1 x 1: the
centred clip) are averaged per video unless --per-view. OUT holds embed.json (settings),
shard-NNNNN.safetensors (features, video, view) and index.json (video -> shard, row); see
docs/using.md. Resumable: a rerun skips finished shards. Sharded by shard files across
processes: --shard/--num-shards, or torchrun's RANK/WORLD_SIZE, or a Slurm array. Videos that
cannot be decoded are listed as failed in index.json; the exit code is then 1.
"""

from __future__ import annotations

import argparse

from mme.cli.predict import add_view_arguments, view_options

NAME = "embed"
HELP = "features of a frozen encoder for every video (safetensors shards + index, resumable, sharded)"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "inputs", nargs="*", metavar="INPUT", help="video files, folders of videos, list files"
    )
    parser.add_argument(
        "--list", dest="list_file", default=None, help="a list file of videos (instead of INPUTs)"
    )
    parser.add_argument("--checkpoint", required=True, help="any checkpoint load_classifier reads")
    parser.add_argument(
        "--out", required=True, help="output folder (resumed when it holds a run with these settings)"
    )
    parser.add_argument(
        "--pool", choices=("mean", "cls-free", "tokens"), default="mean", help="what to store (default mean)"
    )
    parser.add_argument(
        "--per-view", action="store_true", help="one row per view instead of the mean of a video's views"
    )
    parser.add_argument(
        "--shard-size", type=int, default=None, help="videos per shard (default 1024; 32 with --pool tokens)"
    )
    parser.add_argument("--shard", type=int, default=None, help="this process's index among --num-shards")
    parser.add_argument("--num-shards", type=int, default=None, help="processes sharing the job")
    add_view_arguments(parser, clips=1, crops=1)


def run(args: argparse.Namespace) -> int:
    from mme.eval.embed import embed

    summary = embed(
        args.checkpoint,
        args.inputs or None,
        args.out,
        list_file=args.list_file,
        pool=args.pool,
        per_view=args.per_view,
        shard_size=args.shard_size,
        shard=args.shard,
        num_shards=args.num_shards,
        settings=view_options(args),
    )
    return summary.exit_code
