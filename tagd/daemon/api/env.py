"""What the JSON-RPC methods may use of the daemon: a narrow environment, not the whole service.

As Zaparoo Core's handlers take a ``RequestEnv`` rather than the service, :func:`tagd.daemon.api.methods.build`
takes an :class:`ApiEnv`. The daemon (``tagd.daemon.service.Daemon``) satisfies it structurally, and the API
package never imports the service: the service builds the API, not the reverse. A method that needs something
new adds it here first, so what the API can reach stays written down in one place.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ContextManager, Protocol

if TYPE_CHECKING:
    import threading

    from tagd.daemon.config import Config
    from tagd.daemon.mappings import Mapping
    from tagd.daemon.pipeline import Pipeline
    from tagd.daemon.store import Store
    from tagd.readers.base import ReaderInfo, ReaderWorker, WriteRequest
    from tagd.token import Token


class ApiEnv(Protocol):
    config: Config  # the running config (settings reads it; update_settings and the reloads replace it)
    config_path: Path  # the file settings.update edits and settings.reload reads
    store: Store  # history, mappings, inbox
    pipeline: Pipeline  # the active and last tokens
    file_mappings: list[Mapping]  # the config's [[mappings.entry]] and the mapping files, as last read
    integrations: Any  # play sessions and web services (tagd/integrations/runtime.py); None until started

    def reader_infos(self) -> list[ReaderInfo]:
        """The connected readers."""

    def readers_not_open(self) -> list[tuple[str, str, str]]:
        """(driver, path, why) of each reader that is trying to open and failing."""

    def write_worker(self, reader_id: str | None) -> tuple[ReaderWorker, str]:
        """The reader a readers.write goes to (its worker and readerId); RpcError if there is none."""

    def begin_write(self, reader_id: str, request: WriteRequest) -> ContextManager[None]:
        """Hold ``request`` as the write waiting on ``reader_id`` while the block runs (readers.write.cancel finds
        it there); WriteError if a write already waits on that reader."""

    async def write_text(self, reader_id: str | None, text: str, timeout: float, cancel: threading.Event,
                         exclude: frozenset[str] = frozenset()) -> Token:
        """Write ``text`` on the next tag (not one of ``exclude``) and return it as read back: a deck's card.
        RpcError with no writable reader; WriteError (WriteCancelled, TagExcluded) from the write."""

    def cancel_writes(self, reader_id: str | None) -> None:
        """Cancel the waiting writes (on one reader, or all): a new write may be asked for at once."""

    async def run_token(self, token: Token) -> None:
        """Announce and launch a token as if scanned."""

    async def stop_media(self) -> None:
        """Ask the cores to stop what is running."""

    def refresh_mappings(self) -> None:
        """Rebuild the mapping table after the store's mappings changed."""

    async def reload_mappings(self) -> list[str]:
        """Read the file mappings again; the problems of files skipped (ConfigError if the config is broken)."""

    async def reload_config(self) -> list[str]:
        """Read the whole config file again; as reload_mappings."""

    async def update_settings(self, update: dict[str, Any]) -> None:
        """settings.update: change these keys in the running config and in the file, one update at a time."""

    def zaparoo_core(self) -> Any:
        """The ``[[core]]`` of type zaparoo, or None (what is Core's goes there: profile settings)."""

    async def core_version(self) -> tuple[str | None, str | None]:
        """The zaparoo core's (version, platform), (None, None) without one (for ``version``)."""

    async def proxy(self, method: str, params: Any) -> Any:
        """A method tagd does not serve, sent to the zaparoo core (without one, what nocore.py answers)."""
