"""The data pipeline: clip sampling, geometry and augmentation, masking, datasets, synthetic data.

Import the pieces from their modules (``mme.data.datasets``, ``mme.data.transforms``, ...);
this package file stays light so that ``mme --help`` and the configs import quickly.
"""
