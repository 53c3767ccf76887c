"""Reading data off disk: video lists (:mod:`mme.io.lists`), official dataset splits
(:mod:`mme.io.splits`) and video decoding (:mod:`mme.io.video`: ``open_video``).

Import from the modules; this file stays empty so that light users (the ``mme`` command's
argument parsers) do not pay for NumPy and PyAV.
"""
