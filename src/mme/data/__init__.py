"""The data pipeline: sampling, geometry, augmentation, masking, datasets, loaders (docs/data.md)."""
