"""Evaluation apart from training: multi-view testing, the probes, predict and embed.

``mme eval`` is :func:`mme.eval.evaluate.run_eval`, ``mme probe`` :func:`mme.eval.probe.run_probe`;
predict and embed share the inference path of :mod:`mme.eval.infer`. This file stays empty of
imports so that ``mme --help`` stays instant.
"""
