"""Training machinery: run configs, the one Trainer, optimiser groups, checkpoints, process groups.

The jobs are tasks (:mod:`mme.tasks.pretrain`, :mod:`mme.tasks.classify`) that
:class:`mme.train.trainer.Trainer` runs; evaluation lives in :mod:`mme.eval`; see
docs/training.md. This file stays empty of imports so that ``mme --help`` stays instant.
"""
