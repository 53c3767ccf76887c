"""mme.demo: ``mme demo``, MME vs pixel pre-training vs none on synthetic motion, with figures.

>>> from mme.demo import run_demo
>>> results = run_demo("demo_out")  # doctest: +SKIP
"""

from mme.demo.run import run_demo
from mme.demo.settings import METHODS, DemoSettings, Method, full_settings, quick_settings

__all__ = ["METHODS", "DemoSettings", "Method", "full_settings", "quick_settings", "run_demo"]
