"""The pipeline: reader events in, launches out (SPEC §5) — dedupe, ignore-on-connect, mappings, tap/hold, history.

Rules, as Zaparoo Core applies them:

- **Dedupe.** The same token (normalised uid + text) does not launch again until it is removed or another
  token is seen. A ReaderLost is *not* a removal: the reader coming back with the same tag launches nothing.
- **ignore_on_connect.** A tag already on a reader when it connects is not launched (it is still active and
  deduped). "Already on" = the reader's first TagSeen arriving within ``connect_grace`` seconds of its
  ReaderAdded (the worker polls right after opening, so a tag lying there shows up within one poll).
- **Written tags.** A TagSeen with ``written=True`` (the tag a reader just wrote) or whose uid was passed to
  :meth:`Pipeline.mark_written` (consumed by its next sighting, forgotten after ``WRITTEN_TTL``) is not launched.
- **Tap mode.** Removal only clears the active token. **Hold mode.** Removing the token that launched the
  media stops it (every forwarder's ``stop_media``) after ``exit_delay`` seconds, unless the token is put
  back first (then nothing happens: the media keeps running). A new launch also cancels a pending exit.
  The mode is the reader's own (``[[readers.connect]] scan_mode``), else its driver's, else ``[readers.scan]``.
  Media of a system in ``ignore_system`` (the core's media.started says which plays) is not stopped.
- **runZapScript off** (``run_zapscript = false``): a launch is announced and recorded (not a success), not
  forwarded, and arms nothing — as Core ignores ZapScript then.
- **Launch guard** (``[readers.scan.launch_guard]``, launchguard.py): while the core says media plays, a tap is
  staged (``tokens.staged``) and launches only when confirmed: the same tag again once ready, or ``confirm``.
- **Hooks** (hooks.py): ``[readers.scan] on_scan`` runs before a tap launches and can veto it; ``on_remove``
  runs before a hold-mode exit and can keep the media running. Commands, never a shell, with a timeout.
- **Next-tag actions.** A launch whose script (after mappings) is exactly ``**write:TEXT`` is not forwarded: it
  arms a write of TEXT to the next tag tapped (nexttag.py, zapscript.py). That next tag is written through
  ``write_tag`` instead of launched; history records the arming as a success (an invalid one as a failure).
- **Feedback.** A tap's outcome goes to ``feedback`` (reader id, ok): launched or armed or written, or not (a
  failed launch, an on_scan veto, an invalid next-tag action, a failed write); runZapScript off tells nothing.
- **Forwarding.** Mappings are applied, then every forwarder gets the launch concurrently; each forwarder's
  launches run one at a time, in order (its :class:`~tagd.daemon.forwarders.LaunchQueue`: bounded, stale
  launches dropped), so one slow or failing forwarder delays only itself — never the others, never the readers.
  The launch counts as a **success when at least one
  forwarder succeeded** (with no forwarders at all: failure, since nothing was launched); history records
  the launched token (after mappings) with that flag.

Threading: everything runs on the asyncio loop. :meth:`submit` updates all state synchronously (so events
are applied in arrival order) and returns the launch as a task; hand reader events to it with
``asyncio_sink(loop, pipeline.submit)``. :meth:`handle` is submit + await (tests, API injection).

The service owns the forwarders' lifecycle (``forwarders.start_all`` / ``close_all``) and may swap
``pipeline.config`` (settings.update) or call :meth:`reload_mappings` at any time; both take effect on the
next event.

Why it is long: the rules above are one sequence that a tap goes through, and their order is the behaviour; what
has a life of its own (launch guard, hooks, next-tag actions, launch queues, feedback) is in its own module.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Awaitable, Callable, Iterable

from tagd.daemon.forwarders import Forwarder, ForwardError, LaunchQueue
from tagd.daemon.mappings import Mapping, MappingTable
from tagd.daemon.hooks import run_hook
from tagd.daemon.launchguard import LAUNCH, PASS, LaunchGuard
from tagd.daemon.nexttag import PendingWrite
from tagd.daemon.store import StoreError
from tagd.daemon.zapscript import Invalid, NextLauncher, NextWrite, media_disrupting, next_action, with_launcher
from tagd.readers.base import (ReaderAdded, ReaderEvent, ReaderFailed, ReaderInfo, ReaderLost, TagGone, TagSeen,
                               WriteError, WriteRequest)
from tagd.token import Token, normalize_uid

log = logging.getLogger(__name__)

Notify = Callable[[str, Any], None]
WriteTag = Callable[[str, WriteRequest], Awaitable[Any]]  # (reader_id, request): the daemon's write on that reader
WRITTEN_TTL = 60.0  # seconds a mark_written() uid stays suppressed if the tag is not seen again


def _clip(text: str, keep: int = 200) -> str:
    """A text as much as a log line should hold: a 1 MB ``run`` text must not become a 1 MB line per launch."""
    return text if len(text) <= keep else f"{text[:keep]}… ({len(text)} characters)"


class Pipeline:
    def __init__(self, config: Any, store: Any, mappings: MappingTable, forwarders: Iterable[Forwarder],
                 notify: Notify | None = None, *, connect_grace: float = 1.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.store = store
        self.mappings = mappings
        self.forwarders = list(forwarders)
        self.notify: Notify = notify or (lambda method, params: None)
        self.connect_grace = connect_grace
        self.clock = clock
        self.active: dict[str, Token] = {}  # reader_id → the token on it (as scanned, before mappings)
        self.playing_system = ""  # the core's media.started systemId ("" when nothing plays or no core says)
        self.media_playing = False  # between the core's media.started and media.stopped (the launch guard)
        self.guard = LaunchGuard(lambda method, params: self.notify(method, params))
        self.last: Token | None = None  # the last token seen or run
        self.readers: dict[str, ReaderInfo] = {}
        self._seen_key: tuple[str, str] | None = None  # dedupe: the last token seen, until removed
        self._launched_key: tuple[str, str] | None = None  # hold mode: the token that launched the media
        self._exit_task: asyncio.Task[None] | None = None
        self._written: dict[str, float] = {}  # normalised uid → expiry (clock)
        self._connected_at: dict[str, float] = {}  # reader_id → ReaderAdded time, until its first tag
        self._queues: dict[int, LaunchQueue] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._stopping = False
        # observers of launches and hold-mode exits (play sessions without a core: tagd/integrations/runtime.py)
        self.on_launch: Callable[[Token, bool], None] | None = None
        self.on_exit: Callable[[], None] | None = None
        # given a tap's launch (or next-tag write) as it starts: the daemon pauses new API work until it is done
        # (tagd.web.intake.Priority.during), so a tap never waits behind API clients
        self.urgent: Callable[[asyncio.Task[Any]], None] | None = None
        self.feedback: Callable[[str, bool | None], None] | None = None  # (reader_id, ok) of each tap's outcome: feedback.py
        self.pending_write: PendingWrite | None = None  # armed by **write:, done to the next tag
        self.pending_launcher: str | None = None  # armed by **launch?launcher=ID, used by the next tap that launches
        self.write_tag: WriteTag | None = None  # set by the daemon: writes on a reader (WriteError if it cannot)
        # reader_id → True while its tags are cards being written, not taps (decks.write: a blank tag placed
        # between two of the deck's writes must not launch)
        self.writing_cards: Callable[[str], bool] | None = None
        self._mapping_lock = asyncio.Lock()
        self._mapping_queue = 0  # launches in or waiting for _mapping_lock
        self._unrecorded = 0  # launches whose history row could not be written since the last that could
        self._unsaved_inbox: set[str] = set()  # inbox texts already logged as not stored

    # --- inputs -------------------------------------------------------------

    async def handle(self, event: ReaderEvent) -> None:
        """Apply one reader event and wait for any launch it caused."""
        task = self.submit(event)
        if task is not None:
            await task

    def submit(self, event: ReaderEvent) -> asyncio.Task[Any] | None:
        """Apply one reader event now (synchronously); a launch it causes runs as the returned task."""
        if self._stopping:
            return None
        if isinstance(event, TagSeen):
            return self._tag_seen(event)
        if isinstance(event, TagGone):
            self._tag_gone(event.reader_id)
        elif isinstance(event, ReaderAdded):
            self._reader_added(event.info)
        elif isinstance(event, ReaderLost):
            self._reader_lost(event.reader_id, event.reason)
        elif isinstance(event, ReaderFailed):
            self.inbox(f"Reader {event.connect} does not open", "readers", severity=1, body=event.reason)
        return None

    async def run_token(self, token: Token) -> bool:
        """Launch an injected token (API ``run``): mappings, forwarders, history — no dedupe, not active on any reader.

        ``token.unsafe`` is passed on as given. Returns the launch's success."""
        self.last = token
        self._cancel_exit()
        self._launched_key = None  # an API launch is not held by any tag
        return bool(await self._spawn(self._launch(token)))

    def confirm(self) -> asyncio.Task[Any]:
        """The API's ``confirm``: launch the staged token now (no delay); LookupError if none is staged."""
        if not self.media_playing:
            self.guard.clear()
        token = self.guard.confirm()
        self._cancel_exit()
        self._launched_key = token.key
        return self._spawn(self._launch(token))

    def mark_written(self, uid: str) -> None:
        """Do not launch the tag with this uid the next time it is seen (it was just written)."""
        self._written[normalize_uid(uid)] = self.clock() + WRITTEN_TTL

    def reload_mappings(self, file_mappings: Iterable[Mapping] = ()) -> MappingTable:
        """Rebuild the mapping table from the store (first) and the given mapping-file entries (after)."""
        self.mappings = MappingTable.from_sources(self.store.mappings(), file_mappings)
        return self.mappings

    async def stop(self, timeout: float = 2.0) -> None:
        """Stop taking events; give in-flight launches ``timeout`` seconds, then cancel them. Forwarders stay open."""
        self._stopping = True
        self._cancel_exit()
        tasks = list(self._tasks)
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            for t in pending:
                t.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    # --- reader events --------------------------------------------------------

    def _tag_seen(self, event: TagSeen) -> asyncio.Task[Any] | None:
        rid = event.reader_id
        token = event.token if event.token.reader_id else event.token.model_copy(update={"reader_id": rid})
        key = token.key
        previous = self.active.get(rid)
        self.active[rid] = token
        self.last = token
        task = self._launch_if_due(event, token)
        if task is not None and self.urgent is not None:
            self.urgent(task)
        # announced after the launch is under way: the launch's first step then runs before the fan-out of
        # tokens.added to every API client (a thousand socket writes that would otherwise go first)
        if previous is None or previous.key != key:
            self.notify("tokens.added", token.to_json())
        return task

    def _launch_if_due(self, event: TagSeen, token: Token) -> asyncio.Task[Any] | None:
        rid, key = event.reader_id, token.key
        connected_at = self._connected_at.pop(rid, None)
        on_connect = connected_at is not None and self.clock() - connected_at <= self.connect_grace
        on_connect = on_connect or event.detail.get("on_connect") is True  # a satellite's own judgement
        written = self._take_written(token.uid) or event.written

        if self._exit_task is not None and key == self._launched_key:
            log.info("token put back on %s: exit cancelled", rid)
            self._cancel_exit()
            self._seen_key = key
            return None
        if key == self._seen_key:
            return None
        self._seen_key = key
        if written:
            log.info("not launching the tag just written on %s", rid)
            return None
        if self.writing_cards is not None and self.writing_cards(rid):
            log.info("not launching a tag on %s: a deck's cards are being written there", rid)
            return None
        if on_connect and self.config.readers.scan.ignore_on_connect:
            log.info("not launching the tag already on %s when it connected", rid)
            return None
        if not event.launch:  # e.g. a satellite's tap that arrived after max_age: on record, not launched
            self._record(token, False)
            return None
        if self.pending_write is not None:
            pending, self.pending_write = self.pending_write, None
            if pending.is_source(token):
                log.info("the tag that armed the write is back on %s: waiting for another tag", rid)
                self.pending_write = pending
                return None
            if not pending.expired(self.clock()):
                return self._spawn(self._write_next(pending, token))
            log.warning("the armed write lapsed (over a minute): launching as usual")
        guard = self.config.readers.scan.launch_guard
        disrupting = self._disrupts(token) if guard.enabled and self.media_playing else True
        decision = self.guard.decide(guard, self.media_playing, token, disrupting)
        if decision not in (PASS, LAUNCH):
            self._tell(token, None)  # staged, or waiting for it to be confirmed: seen, not launched (yet)
            return None
        self._cancel_exit()  # the new launch replaces the media a pending exit would stop
        self._launched_key = key
        return self._spawn(self._launch(token, scanned=True))

    def _tag_gone(self, rid: str) -> None:
        self._connected_at.pop(rid, None)
        token = self.active.pop(rid, None)
        if token is None:
            return
        self.notify("tokens.removed", None)
        if token.key == self._seen_key:
            self._seen_key = None
        scan = self.config.readers.scan
        info = self.readers.get(rid)  # a reader may have its own scan_mode (Core's [[readers.connect]] key)
        mode = self.config.readers.scan_mode_for(info.driver, info.path) if info is not None else scan.mode
        still_on_a_reader = any(t.key == token.key for t in self.active.values())
        if (mode == "hold" and token.key == self._launched_key and not still_on_a_reader
                and not self._ignored_system()):
            self._cancel_exit()
            self._exit_task = self._spawn(self._exit_after(float(scan.exit_delay), token))

    def core_notification(self, method: str, params: Any) -> None:
        """A core's media.started / media.stopped: which system plays, for hold mode's ``ignore_system``."""
        if method == "media.started" and isinstance(params, dict):
            self.playing_system = str(params.get("systemId") or "")
            self.media_playing = True
        elif method == "media.stopped":
            self.playing_system = ""
            self.media_playing = False
            self.guard.clear()  # as Core: a staged token goes when the media it would replace stops

    def _ignored_system(self) -> bool:
        """Hold mode leaves media of a system in ``[readers.scan] ignore_system`` running when the token is lifted
        (Core's rule; system IDs compared without case — Core's system aliases are not known here)."""
        system = self.playing_system.lower()
        return bool(system) and any(s.strip().lower() == system for s in self.config.readers.scan.ignore_system)

    def _reader_added(self, info: ReaderInfo) -> None:
        rid = info.reader_id
        self.readers[rid] = info
        if not info.remote:  # a remote reader's node applied ignore-on-connect before it published the tap
            self._connected_at[rid] = self.clock()
        self.notify("readers.added", {"driver": info.driver, "path": info.path, "connected": True})

    def _reader_lost(self, rid: str, reason: str) -> None:
        """Not a removal: the active token is dropped (its reader is gone) but dedupe and hold state stay."""
        self._connected_at.pop(rid, None)
        self.active.pop(rid, None)
        info = self.readers.pop(rid, None)
        driver, path = (info.driver, info.path) if info else ("", rid)
        self.notify("readers.removed", {"driver": driver, "path": path, "connected": False})
        if reason != "stopped":
            self.inbox(f"Reader {driver}:{path} disconnected", "readers", severity=1, body=reason)

    def _take_written(self, uid: str) -> bool:
        now = self.clock()
        for stale in [u for u, expiry in self._written.items() if expiry < now]:
            del self._written[stale]
        return self._written.pop(normalize_uid(uid), None) is not None if uid else False

    # --- launching --------------------------------------------------------------

    def _spawn(self, coro: Awaitable[Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _cancel_exit(self) -> None:
        if self._exit_task is not None:
            self._exit_task.cancel()
            self._exit_task = None

    async def _launch(self, token: Token, scanned: bool = False) -> bool:
        if scanned and not await run_hook("on_scan", self.config.readers.scan.on_scan, token):
            log.info("on_scan said no: not launching %r", token.text)
            self._tell(token, False)
            return False
        launched = await self._apply_mappings(token)
        if not self.config.run_zapscript:  # the App's runZapScript off: announced (tokens.added) and recorded only
            log.info("not forwarding %r: runZapScript is off", _clip(launched.text))
            self._record(launched, False)
            return False
        action = next_action(launched.text)
        if action is not None:
            success = self._arm(action, launched)
        else:
            if scanned and self.pending_launcher is not None:
                launched = self._override_launcher(launched)
            results = await asyncio.gather(*(self._forward(fw, launched) for fw in self.forwarders))
            success = any(results)
            self._record(launched, success)
            log.info("launch %r from %s: %s", _clip(launched.text), launched.reader_id or launched.source or "api",
                     "ok" if success else "failed")
            self._observe(self.on_launch, launched, success)
        if scanned:
            self._tell(token, success)
        return success

    def _tell(self, token: Token, ok: bool | None) -> None:
        """A tap's outcome to the person at the reader (feedback.py): the launch went out, or it did not, or (None)
        the launch guard holds it."""
        if self.feedback is not None and token.reader_id:
            self._observe(self.feedback, token.reader_id, ok)

    def _disrupts(self, token: Token) -> bool:
        """Whether the tap, mapped as it would launch, changes or stops the media (the launch guard's question). A
        text long enough that its regex match belongs in a thread counts as disrupting: staged, to be safe."""
        table = self.mappings
        if table.slow_for(token):
            return True
        return media_disrupting(table.apply(token).text)

    async def _apply_mappings(self, token: Token) -> Token:
        """The mapped token. A long text that a regex must see is matched in a worker thread, so the loop (API, other
        taps) goes on meanwhile; launches still leave this step in the order they entered it (a FIFO lock, taken only
        while a threaded match is running or waiting), so a slow match is never overtaken by the tap after it."""
        table = self.mappings
        if not self._mapping_queue and not table.slow_for(token):
            return table.apply(token)
        self._mapping_queue += 1
        try:
            async with self._mapping_lock:
                if table.slow_for(token):
                    return await asyncio.to_thread(table.apply, token)
                return table.apply(token)
        finally:
            self._mapping_queue -= 1

    def _record(self, token: Token, success: bool) -> None:
        """History is a record, not a reason to lose the launch: when it cannot be written (a full disk) the log says
        so once, with the reason, the inbox too if it can, and how many launches were missed when it works again."""
        try:
            self.store.add_history(token, success)
        except StoreError as exc:
            if self._unrecorded == 0:
                log.error("%s (the launches go on; the log says when history is recorded again)", exc)
                self.inbox("Launches are not being recorded in history", "history", severity=2, body=str(exc))
            self._unrecorded += 1
        except Exception:
            log.exception("recording history failed")
        else:
            if self._unrecorded:
                log.warning("history is recorded again; %d launch(es) before this one were not recorded",
                            self._unrecorded)
                self._unrecorded = 0

    def _override_launcher(self, token: Token) -> Token:
        """The armed launcher override applied to this tap's script, if it launches a game (then it is used up)."""
        assert self.pending_launcher is not None
        text = with_launcher(token.text, self.pending_launcher)
        if text is None:
            return token  # a coin or a key: the override waits for a tap that launches
        log.info("launching with launcher %r (armed by a launcher tag)", self.pending_launcher)
        self.pending_launcher = None
        return token.model_copy(update={"text": text})

    def _arm(self, action: NextWrite | NextLauncher | Invalid, token: Token) -> bool:
        """A next-tag action: armed (a success in history) or refused (a failure, and the reason in the log)."""
        if isinstance(action, Invalid):
            log.warning("not arming a next-tag action from %r: %s", _clip(token.text), action.reason)
            self._record(token, False)
            return False
        if isinstance(action, NextLauncher):
            self.pending_launcher = action.launcher
            log.info("armed: the next tap that launches uses launcher %r", action.launcher)
            self._record(token, True)
            return True
        self.pending_write = PendingWrite(action.text, token, self.clock())
        log.info("armed: the next tag tapped gets %r", _clip(action.text))
        self._record(token, True)
        return True

    async def _write_next(self, pending: PendingWrite, token: Token) -> bool:
        """Write the armed text to this tag, on its reader; a failure is logged and in the inbox."""
        try:
            if self.write_tag is None:
                raise WriteError("this tagd writes no tags")
            await self.write_tag(token.reader_id or "", pending.request(token))
        except WriteError as exc:
            log.warning("writing the armed text to the next tag failed: %s", exc)
            self.inbox("Writing the next tag failed", "readers", severity=2, body=f"{pending.text!r}: {exc}")
            self._tell(token, False)
            return False
        log.info("wrote the armed text %r to the tag on %s", pending.text, token.reader_id)
        self._tell(token, True)
        return True

    def _queue(self, fw: Forwarder) -> LaunchQueue:
        queue = self._queues.get(id(fw))
        if queue is None or queue.forwarder is not fw:
            queue = self._queues[id(fw)] = LaunchQueue(fw)
        return queue

    async def _forward(self, fw: Forwarder, token: Token) -> bool:
        try:
            await self._queue(fw).launch(token)
            return True
        except ForwardError as exc:
            log.warning("%s: %s", fw.name, exc)
            self.inbox(f"Launches are not reaching {fw.name}", "core", severity=2, body=str(exc))
        except Exception:
            log.exception("%s: launch crashed", fw.name)
        return False

    async def _exit_after(self, delay: float, token: Token | None = None) -> None:
        await asyncio.sleep(delay)
        self._exit_task = None
        self._launched_key = None
        if not await run_hook("on_remove", self.config.readers.scan.on_remove, token):
            log.info("on_remove said no: the media keeps running")
            return
        log.info("held token removed: stopping media")
        self._observe(self.on_exit)
        await asyncio.gather(*(self._stop_media(fw) for fw in self.forwarders))

    async def _stop_media(self, fw: Forwarder) -> None:
        try:
            await self._queue(fw).stop_media()
        except ForwardError as exc:
            log.warning("%s: stop failed: %s", fw.name, exc)
        except Exception:
            log.exception("%s: stop crashed", fw.name)

    @staticmethod
    def _observe(callback: Callable[..., None] | None, *args: Any) -> None:
        if callback is not None:
            try:
                callback(*args)
            except Exception:  # an observer's bug is not the launch's
                log.exception("launch observer failed")

    def inbox(self, text: str, category: str, severity: int, body: str = "") -> None:
        """tagd's own messages (Zaparoo's inbox); the same text is not added twice while it is unread.

        One that cannot be stored (a full disk) is logged instead — once, not again for each repeat."""
        try:
            self.store.add_inbox(text, category, severity=severity, body=body, unique=True)
        except StoreError as exc:
            if text not in self._unsaved_inbox:
                self._unsaved_inbox.add(text)
                log.error("%s — the message was: %s%s", exc, text, f": {body}" if body else "")
        except Exception:
            log.exception("adding an inbox message failed")
        else:
            self._unsaved_inbox.discard(text)
