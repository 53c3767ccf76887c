"""mme.demo: ``mme demo`` (MME vs pixel pre-training vs none, on synthetic motion) and its figures.

>>> from mme.demo import run_demo, trajectory_figure
>>> results = run_demo("demo_out")  # doctest: +SKIP
>>> trajectory_figure("demo_out/pretrain/mme/model", "clip.mp4", "traj.png")  # doctest: +SKIP
"""

from mme.demo.pipeline import run_demo
from mme.demo.settings import METHODS, DemoSettings, Method, full_settings, quick_settings
from mme.demo.trajectories import PictureSettings, trajectory_figure

__all__ = [
    "METHODS",
    "DemoSettings",
    "Method",
    "PictureSettings",
    "full_settings",
    "quick_settings",
    "run_demo",
    "trajectory_figure",
]
