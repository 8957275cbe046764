"""Measuring harmonization: the paper's metrics, weight-free metrics and user-study statistics.

Pure functions on arrays (numpy / torch) that know nothing of files, folders or the CLI, so
each can be tested on constructed cases with a known answer. ``dkt evaluate`` and
``dkt study`` (in :mod:`dkt.cli`) put them together.
"""
