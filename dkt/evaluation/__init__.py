"""Measuring harmonization: the paper's metrics, weight-free metrics and user-study statistics.

The metrics are pure functions on arrays (numpy / torch) that know nothing of folders or
the CLI, so each can be tested on constructed cases with a known answer; the few modules
that touch files (:mod:`~dkt.evaluation.report`, the study's crash-safe
:mod:`~dkt.evaluation.judgments` log) own one file format each. The verbs put them
together: :func:`~dkt.evaluation.run.evaluate` (behind ``dkt evaluate``) and
:mod:`~dkt.evaluation.composites` (frozen composite sets, behind ``dkt data
make-composites``) and :mod:`~dkt.evaluation.study_run` (study designs and Bradley-Terry fits,
behind ``dkt study pairs`` and ``dkt study fit``); :mod:`dkt_cli` parses, calls them and prints.
"""
