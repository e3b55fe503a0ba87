"""Sidecar sources: each implements :class:`streaming.sources.base.Source`."""

from streaming.sources.base import Emit, Source, SourceFatalError, SourceHealth

__all__ = ["Emit", "Source", "SourceFatalError", "SourceHealth"]
