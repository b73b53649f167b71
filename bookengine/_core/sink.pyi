"""Typed face of the line reader's interface to compiled consumers (see sink.pyx)."""

from typing_extensions import disjoint_base

@disjoint_base
class LineSink:
    """Base of the compiled consumers the line reader feeds (``BookRouter.set_sink``)."""
