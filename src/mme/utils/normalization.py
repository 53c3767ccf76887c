"""The input normalisation every mme model is trained with: ImageNet mean and std per RGB channel.

It lives here, below both ``data`` (which normalises clips, :func:`mme.data.transforms.normalize_clip`)
and ``models`` (whose Hugging Face export writes it into ``preprocessor_config.json``), so the two
cannot disagree.
"""

from __future__ import annotations

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
