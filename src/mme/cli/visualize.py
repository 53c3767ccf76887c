"""Draw the trajectories MME is asked to predict for a video, and what a checkpoint predicts.

Takes the centred clip of VIDEO (centre crop, the model's clip size), tracks the target
trajectories as pre-training does, hides patches with a tube mask, runs the pre-training model
and draws the targets on the frames of one tubelet, then the masked patches' normalised targets
beside the model's predictions. Predictions are drawn as the model outputs them, in the space of
the normalised target (patch-std: each point's motion relative to its patch's mean, in units of
the patch's std); borrowing the target's per-patch mean and std to draw them in pixels would make
an untrained decoder look like a trained one.

The title, the printed line and OUT with suffix .json give the pre-training loss of the masked
tokens for the model and for predicting zeros, a baseline that never sees the video: a model
clearly below it learnt something from the visible patches. A checkpoint without a pre-training
decoder (a fine-tuned classifier) is refused unless --allow-random-decoder, which marks the
figure "RANDOM DECODER".

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
    parser.add_argument(
        "--out", required=True, metavar="PNG", help="picture to write; its numbers go beside it, suffix .json"
    )
    parser.add_argument(
        "--start", type=int, default=None, help="first raw frame of the clip (default: centred)"
    )
    parser.add_argument("--stride", type=int, default=None, help="frame stride (default: the run's, else 4)")
    parser.add_argument("--tubelet", type=int, default=None, help="tubelet to draw (default: most motion)")
    parser.add_argument(
        "--magnify",
        type=float,
        default=None,
        help="drawing scale of displacements in pixels (default: auto; patch-std normalised ones "
        "are drawn at a fixed scale)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of the mask and of a random decoder (default 0)"
    )
    parser.add_argument(
        "--allow-random-decoder",
        action="store_true",
        help="draw a checkpoint without a pre-training decoder (e.g. a fine-tuned classifier): its "
        "predictions come from a newly initialised decoder, and the figure says so",
    )


def run(args: argparse.Namespace) -> int:
    import dataclasses

    from mme.errors import ConfigError
    from mme.visualize.trajectories import PictureSettings, settings_from_run, trajectory_figure

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
        allow_random_decoder=args.allow_random_decoder,
    )
    loss = info["loss"]
    who = "RANDOM decoder" if info["random_decoder"] else "model"
    print(
        f"wrote {info['path']} and {info['json']} (tubelet {info['tubelet']}); pre-training loss on "
        f"{loss['masked_tokens']} masked tokens ({loss['space']}): {who} {loss['model']:.4g}, "
        f"zeros baseline {loss['zeros']:.4g} ({info['baseline']})"
    )
    return 0
