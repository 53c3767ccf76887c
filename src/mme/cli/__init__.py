"""The ``mme`` command. Each sub-command is one module here (see :mod:`mme.cli.main`)."""
