"""Reader drivers. See base.py for the interface and registry.py for the built-in list."""

from tagd.readers.base import (  # noqa: F401
    Capability,
    Reader,
    ReaderAdded,
    ReaderError,
    ReaderFailed,
    ReaderEvent,
    ReaderInfo,
    ReaderLost,
    ReaderWorker,
    TagGone,
    TagSeen,
    WriteCancelled,
    WriteError,
    WriteRequest,
    open_reader,
    register,
)
