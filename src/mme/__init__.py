"""mme: Masked Motion Encoding (Sun et al., CVPR 2023) for self-supervised video learning."""

__version__ = "0.1.0"
