"""Training and evaluation: run configs, optimiser groups, schedules, loops, checkpoints, DDP.

The jobs behind ``mme pretrain | finetune | eval | probe`` live in :mod:`mme.train.pretrain`,
:mod:`mme.train.finetune`, :mod:`mme.train.evaluate` and :mod:`mme.train.probe`; see
docs/training.md. This file stays empty of imports so that ``mme --help`` stays instant.
"""
