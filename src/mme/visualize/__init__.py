"""mme.visualize: the trajectory picture of ``mme visualize`` and the plots of jobs' logs.

>>> from mme.visualize import trajectory_figure
>>> trajectory_figure("demo_out/pretrain/mme/model", "clip.mp4", "traj.png")  # doctest: +SKIP
"""

from mme.visualize.trajectories import PictureSettings, trajectory_figure

__all__ = ["PictureSettings", "trajectory_figure"]
