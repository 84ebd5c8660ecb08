"""The errors of weight files, in one leaf module: the checkpoint readers
(:mod:`.safe_unpickle`) raise them and :mod:`.weights` (which finds, checks and loads files)
re-exports them. Every message is meant for the user: ``"<file name>: <reason>"`` in plain words.
"""
from __future__ import annotations


class WeightsError(Exception):
    """A weight file that cannot be used; the message says why."""


class MissingWeightsError(WeightsError):
    pass


class CheckpointFormatError(WeightsError):
    pass


class ArchitectureMismatchError(WeightsError):
    pass


class ChecksumError(WeightsError):
    pass


class BrokenWeightsError(CheckpointFormatError):
    """Every installed weight file of a model is broken (the message names each and why)."""
