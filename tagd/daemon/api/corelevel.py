"""Which Zaparoo Core API level tagd reports in ``version``, so the Zaparoo App enables the features that work.

The App does not ask what a server can do: it compares the ``version`` string with one threshold per feature
(its ``src/lib/featureGates.ts``, and ``clients.current`` from 2.16.0 in ``ConnectionProvider.tsx``) and
shows or hides the feature. tagd's own version (0.1.0) would read as an ancient Core, so ``version`` reports a
Core API level instead, with tagd's version as SemVer build metadata: ``2.15.0+tagd.0.1.0``. The App takes
``+…`` as a release (only ``-dev``/``-rc``/``-beta``/``-alpha`` or a non-SemVer string make it a development
build, which passes every gate), and shows the whole string to the user.

**The rule.** Each gate (:data:`GATES`) is either *tagd's* — its methods are answered by tagd itself (inbox,
mappings, what this connection may do) — or *the core's* — its methods are proxied to a ``[[core]]`` of type
zaparoo. A gate *works* when:

- tagd's: tagd serves every one of its methods (and, for a gate that changes what an old method means,
  tagd implements the new meaning: :data:`TAGD_MEANINGS`);
- the core's, with a Zaparoo Core whose version is known: that version is at least the gate's (a
  development build of Core passes, as in the App);
- the core's, with no Zaparoo Core (or none that answered ``version`` yet): always. Without a core these
  features cannot work at any level — their methods answer "no Zaparoo Core configured", or the truth
  ("no media", "no systems") for what the App polls — and reporting a lower level to hide them would hide
  tagd's own later features too and make the App say "Core update recommended", which is not the fix.

The reported level is the highest gate threshold such that every gate at or below it works (the App's gates
are monotonic in the version, so this is the most it can enable without enabling something broken); below
the first gate it is :data:`FLOOR`. A gate the App adds later is simply not known here, so tagd stays below
it until someone checks it works — the conservative side.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Collection, Iterable

from tagd import __version__

FLOOR = "2.0.0"  # the API of seeds/001 without any gated feature
_SEMVER = re.compile(r"^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$")
_DEV_MARKERS = ("-dev", "-rc", "-beta", "-alpha")


@dataclass(frozen=True)
class Gate:
    """One App feature gate: its name in the App, the first Core version with it, the methods it needs."""

    name: str
    since: str
    methods: tuple[str, ...]
    tagd_side: bool = False  # answered by tagd even when a core is configured (the methods are tagd's)
    new_meaning: bool = False  # the methods existed before: the gate is about what they now do


# The Zaparoo App's gates (zaparoo-app src/lib/featureGates.ts, plus CLIENT_CAPABILITIES_SINCE in
# src/components/ConnectionProvider.tsx) with the methods each feature calls.
GATES: tuple[Gate, ...] = (
    Gate("mediaGenerate", "2.7.0", ("media.generate", "media.generate.cancel")),
    Gate("mediaTags", "2.7.0", ("media.tags",)),
    Gate("inbox", "2.8.0", ("inbox", "inbox.delete", "inbox.clear"), tagd_side=True),
    Gate("activeMediaZapScript", "2.9.0", ("media.active",)),
    Gate("mediaBrowseAllSearch", "2.10.0", ("media.browse", "media.search")),
    Gate("remoteInput", "2.10.0", ("input.keyboard", "input.gamepad")),
    Gate("mediaScrapers", "2.12.0", ("scrapers", "media.scrape", "media.scrape.status")),
    Gate("mediaCleanOrphans", "2.12.0", ("media.clean.orphans",)),
    Gate("mediaDisambiguatingTags", "2.15.0", ("media.search",)),
    Gate("mediaLibrary", "2.15.0", ("media.browse", "media.browse.index")),
    Gate("mediaFavorites", "2.15.0", ("media.tags.update",)),
    Gate("backgroundMediaSlot", "2.15.0", ("media",)),
    Gate("readOnlyMappings", "2.15.0", ("mappings",), tagd_side=True, new_meaning=True),
    Gate("deviceLinking", "2.16.0", ("settings.auth.status", "settings.auth.link")),
    Gate("profiles", "2.16.0", ("profiles", "profiles.active", "profiles.switch")),
    # From 2.16.0 the App asks what its connection may do; without an answer it treats settings as read-only.
    # That is about the server the App talks to — tagd — never the core behind it.
    Gate("clientCapabilities", "2.16.0", ("clients.current",), tagd_side=True),
)

# Gates with new_meaning that tagd implements: readOnlyMappings = `mappings {includeReadOnly}` listing the
# file mappings as source "file", readOnly true.
TAGD_MEANINGS = frozenset({"readOnlyMappings"})


def parse(version: str) -> tuple[int, int, int] | None:
    m = _SEMVER.match(version)
    return (int(m[1]), int(m[2]), int(m[3])) if m else None


def is_development(version: str) -> bool:
    """The App's reading: empty, "DEVELOPMENT", a pre-release marker or not SemVer at all."""
    return (not version or version == "DEVELOPMENT" or any(m in version for m in _DEV_MARKERS)
            or parse(version) is None)


def satisfies(version: str, minimum: str) -> bool:
    """The App's ``satisfies``: a development build passes every gate; else a numeric comparison."""
    if is_development(version):
        return True
    have, need = parse(version), parse(minimum)
    return have is not None and need is not None and have >= need


def gate_works(gate: Gate, tagd_methods: Collection[str], core_version: str | None) -> bool:
    """Does this gate's feature work through tagd (the rule in the module doc)?"""
    if gate.tagd_side or any(m in tagd_methods for m in gate.methods):
        served = all(m in tagd_methods for m in gate.methods)
        return served and (not gate.new_meaning or gate.name in TAGD_MEANINGS)
    return core_version is None or satisfies(core_version, gate.since)


def api_level(tagd_methods: Iterable[str], core_version: str | None, gates: Iterable[Gate] = GATES) -> str:
    """The highest gate threshold at or below which every gate works (see the module doc); FLOOR if none."""
    methods = {m.lower() for m in tagd_methods}
    gates = list(gates)
    level = FLOOR
    for since in sorted({g.since for g in gates}, key=lambda v: parse(v) or (0, 0, 0)):
        if not all(gate_works(g, methods, core_version) for g in gates if parse(g.since) <= parse(since)):
            break
        level = since
    return level


def version_string(level: str, tagd_version: str = __version__) -> str:
    """``2.15.0+tagd.0.1.0``: the level, and tagd's own version as build metadata in characters SemVer allows
    (a "-dev" inside it would make the App treat the whole string as a development build)."""
    meta = re.sub(r"[^0-9A-Za-z]+", ".", tagd_version).strip(".") or "unknown"
    return f"{level}+tagd.{meta}"
