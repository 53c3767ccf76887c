"""Draw the trajectories MME is asked to predict for a video, and what a checkpoint predicts.

Takes the centred clip of VIDEO (centre crop, the model's clip size), tracks the target
trajectories as pre-training does, hides patches with a tube mask, runs the pre-training model
and draws the targets on the frames of one tubelet, then the masked patches' targets beside the
model's predictions. Patch-std normalised predictions are drawn in pixels by un-normalising them
with the target's per-token mean and std (as VideoMAE's visualisation does for pixels).

Clip stride, mask and trajectory settings come from the checkpoint's pre-training run when they
can be found (a training checkpoint step-*.pt, or a run's model/ folder next to config.yaml);
otherwise the released recipe's defaults, or --stride.

  mme visualize --checkpoint demo_out/pretrain/mme/model --video clip.mp4 --out traj.png
"""

from __future__ import annotations

import argparse

NAME = "visualize"
HELP = "picture of target vs predicted trajectories of an MME pre-training checkpoint on a video"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--checkpoint", required=True, metavar="PT", help="MME pre-training checkpoint")
    parser.add_argument("--video", required=True, metavar="FILE", help="video to draw")
    parser.add_argument("--out", required=True, metavar="PNG", help="picture to write")
    parser.add_argument(
        "--start", type=int, default=None, help="first raw frame of the clip (default: centred)"
    )
    parser.add_argument("--stride", type=int, default=None, help="frame stride (default: the run's, else 4)")
    parser.add_argument("--tubelet", type=int, default=None, help="tubelet to draw (default: most motion)")
    parser.add_argument(
        "--magnify", type=float, default=None, help="drawing scale of displacements (default: auto)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the mask (default 0)")


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from mme.demo.trajectories import PictureSettings, settings_from_run, trajectory_figure
    from mme.errors import ConfigError

    if args.stride is not None and args.stride < 1:
        raise ConfigError(f"--stride must be >= 1, got {args.stride}")
    if args.magnify is not None and args.magnify <= 0:
        raise ConfigError(f"--magnify must be > 0, got {args.magnify}")
    settings = settings_from_run(args.checkpoint) or PictureSettings()
    if args.stride is not None:
        settings = dataclasses.replace(settings, stride=args.stride)
    info = trajectory_figure(
        args.checkpoint,
        args.video,
        args.out,
        settings=settings,
        start=args.start,
        tubelet=args.tubelet,
        seed=args.seed,
        magnify=args.magnify,
    )
    errors = info["endpoint_error"]
    print(
        f"wrote {info['path']} (tubelet {info['tubelet']}, displacements x{info['magnify']:g}); "
        f"mean endpoint error of masked points: model {errors['model']:.2f} px, "
        f"patch-mean motion {errors['patch_mean']:.2f} px"
    )
    return 0
