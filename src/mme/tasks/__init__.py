"""Training tasks: each builds its model from the run config and defines the loss of one step.

:mod:`mme.tasks.pretrain` (``mme pretrain``) and :mod:`mme.tasks.classify` (``mme finetune``)
hand a task to :meth:`mme.train.trainer.Trainer.fit`, which runs any of them. This file stays
empty of imports so that ``mme --help`` stays instant.
"""
