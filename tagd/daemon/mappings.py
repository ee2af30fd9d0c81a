"""Mappings: rules that replace a token's text before it is launched (Zaparoo's semantics, SPEC §5).

A mapping matches one token field — ``uid`` (normalised: trimmed, lower-case, no ``:``), ``text`` or
``data`` (hex) — ``exact``-ly, as a substring (``partial``) or with an RE2 ``regex`` (Go syntax,
unanchored search, linear time: a user's pattern cannot hang a tap). The first *enabled* match in creation
order wins and its ``override`` replaces the token text.

Order of sources, as Zaparoo Core does it: database mappings first (by id = creation order), then the
mapping-file entries (the config's ``[[mappings.entry]]``, then ``*.toml`` files of the mappings directory in
the order Core walks them: each directory's entries by name, a subdirectory where its name sorts). File entries
are read exactly as Core reads them (:meth:`MappingTable.from_config`).

Bounds (a user's pattern must not freeze the daemon): RE2 is linear in the text, but its cost is program size ×
text length, so a pattern may compile to at most :data:`MAX_REGEX_PROGRAM` instructions (``(.*a){1000}`` is 11,004:
refused, naming the limit), a regex is never run on a value longer than :data:`MAX_MATCH_TEXT` (no tag holds one; a
longer ``run`` text is matched by exact and partial mappings only), and :meth:`MappingTable.slow_for` tells the
pipeline when to match in a worker thread (RE2 releases the GIL) rather than on the event loop.

Speed: :class:`MappingTable` answers exact patterns from per-type dict indexes and only scans the
partial/regex mappings, stopping at the index hit's position, so the creation-order rule holds across both
and 10,000 exact mappings cost three dict lookups (``evaluations`` counts the scanned patterns).
"""

from __future__ import annotations

import functools
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tagd.token import Token, format_scan_time, normalize_uid

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib  # type: ignore[no-redef]

log = logging.getLogger(__name__)

TYPES = ("uid", "text", "data")
MATCHES = ("exact", "partial", "regex")
TYPE_ALIASES = {"id": "uid", "value": "text"}  # Zaparoo's database names for uid and text
# A mapping file's token_key, as Core reads it: only these two choose a field other than the UID.
FILE_TOKEN_KEYS = {"value": "text", "data": "data"}
QUIET_UID_KEYS = ("", "id", "uid")  # other keys mean the UID too, with a warning (Core: "text" is the UID)
MAX_REGEX_PROGRAM = 2000  # RE2 instructions: ~0.1 s at worst over MAX_MATCH_TEXT; real patterns are under 100
MAX_REGEX_MEMORY = 2 << 20  # RE2's compile budget (max_mem): a huge pattern fails fast instead of allocating first
MAX_MATCH_TEXT = 16 * 1024  # longest value a regex is run on: a whole Classic 4K memory in hex is 8,192
INLINE_MATCH_TEXT = 1024  # a longer value is matched against regexes in a worker thread, off the event loop


class MappingError(ValueError):
    """Bad mapping input: ``str()`` names the field and what was wrong, e.g. ``pattern: invalid regex: missing ): a(b``."""

    def __init__(self, field: str, reason: str) -> None:
        self.field = field
        self.reason = reason
        super().__init__(f"{field}: {reason}" if field else reason)


@functools.lru_cache(maxsize=1)
def _re2() -> tuple[Any, Any]:
    """google-re2 and its options, loaded with the first regex mapping: ~2.7 MB resident (the C++ runtime
    comes with it) that a daemon with only exact and partial mappings never pays."""
    import re2

    options = re2.Options()
    options.log_errors = False  # errors are reported to the user, not to stderr
    options.max_mem = MAX_REGEX_MEMORY
    return re2, options


@functools.lru_cache(maxsize=4096)
def compile_regex(pattern: str) -> Any:
    """Compile with RE2; MappingError carrying RE2's own message (e.g. ``missing ): a(b``), or naming the size limit."""
    re2, options = _re2()
    too_big = f"regex too complex: over tagd's limit of {MAX_REGEX_PROGRAM} RE2 instructions (simplify the pattern)"
    try:
        regex = re2.compile(pattern, options)
    except re2.error as exc:
        msg = exc.args[0] if exc.args else str(exc)
        if isinstance(msg, bytes):
            msg = msg.decode("utf-8", "replace")
        if "too large" in msg or "out of memory" in msg:
            raise MappingError("pattern", too_big) from None
        raise MappingError("pattern", f"invalid regex: {msg}") from None
    if max(regex.programsize, regex.reverseprogramsize) > MAX_REGEX_PROGRAM:
        raise MappingError("pattern", too_big.replace("over", f"{regex.programsize} instructions, over"))
    return regex


class Mapping(BaseModel):
    """One mapping, with Zaparoo's fields. ``id`` is None until stored; ``source`` says where a file entry came from."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: int | None = None
    added_ns: int = Field(default_factory=time.time_ns)
    label: str = ""
    enabled: bool = True
    type: Literal["uid", "text", "data"]
    match: Literal["exact", "partial", "regex"]
    pattern: str = Field(min_length=1)
    override: str
    source: str = ""  # "" = database; else e.g. "config.toml entry 3"

    @field_validator("type", mode="before")
    @classmethod
    def _type_alias(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip().lower()
            return TYPE_ALIASES.get(v, v)
        return v

    @field_validator("match", mode="before")
    @classmethod
    def _match_lower(cls, v: Any) -> Any:
        return v.strip().lower() if isinstance(v, str) else v

    @model_validator(mode="after")
    def _regex_compiles(self) -> "Mapping":
        if self.match == "regex":
            compile_regex(self.pattern)  # raises MappingError, which pydantic wraps; build() unwraps it
        return self

    @classmethod
    def build(cls, **fields: Any) -> "Mapping":
        """Validate user input (API params, a mapping file): MappingError with a clear message if bad."""
        try:
            return cls(**fields)
        except MappingError:
            raise
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "mapping"
            if err["type"] == "literal_error" and field == "type":
                raise MappingError("type", f"must be uid, text or data (or id, value), not {err['input']!r}") from None
            if err["type"] == "literal_error" and field == "match":
                raise MappingError("match", f"must be exact, partial or regex, not {err['input']!r}") from None
            if err["type"] == "missing":
                raise MappingError(field, "is required") from None
            if err["type"] == "extra_forbidden":
                raise MappingError(field, "unknown field") from None
            if err["type"] == "string_too_short":
                raise MappingError(field, "must not be empty") from None
            ctx_error = (err.get("ctx") or {}).get("error")
            if isinstance(ctx_error, MappingError):
                raise ctx_error from None
            raise MappingError(field, err["msg"].removeprefix("Value error, ")) from None

    @property
    def added(self) -> str:
        return format_scan_time(self.added_ns)

    def to_json(self) -> dict[str, Any]:
        """Zaparoo's Mapping object (``id`` as a string, ``added`` RFC 3339)."""
        return {
            "id": str(self.id) if self.id is not None else "",
            "added": self.added,
            "label": self.label,
            "enabled": self.enabled,
            "type": self.type,
            "match": self.match,
            "pattern": self.pattern,
            "override": self.override,
        }


def token_field(token: Token, type_: str) -> str:
    """The token value a mapping of this type compares (uid normalised as Zaparoo does)."""
    if type_ == "uid":
        return normalize_uid(token.uid)
    return token.text if type_ == "text" else token.data


def _exact_key(mapping: Mapping) -> str:
    return normalize_uid(mapping.pattern) if mapping.type == "uid" else mapping.pattern


def _matcher(mapping: Mapping) -> Callable[[str], bool]:
    if mapping.match == "regex":  # the regex sees the normalised uid but is not itself normalised
        search = compile_regex(mapping.pattern).search
        return lambda value: len(value) <= MAX_MATCH_TEXT and search(value) is not None
    needle = _exact_key(mapping)
    return lambda value: needle in value


class MappingTable:
    """The enabled mappings in creation order, indexed for matching. Immutable: rebuild it when mappings change."""

    def __init__(self, mappings: Iterable[Mapping] = ()) -> None:
        self.mappings: list[Mapping] = [m for m in mappings if m.enabled]
        self._exact: dict[str, dict[str, int]] = {t: {} for t in TYPES}
        self._scan: list[tuple[int, str, Callable[[str], bool]]] = []
        self._regex_types: set[str] = set()
        for pos, m in enumerate(self.mappings):
            if m.match == "exact":
                self._exact[m.type].setdefault(_exact_key(m), pos)  # the first one wins
            else:
                try:
                    self._scan.append((pos, m.type, _matcher(m)))
                except MappingError as exc:  # stored by an older tagd that allowed it: skipped, not a failed start
                    log.error("mapping %s skipped: %s", m.id if m.id is not None else m.source, exc)
                    continue
                if m.match == "regex":
                    self._regex_types.add(m.type)
        self.evaluations = 0  # partial/regex patterns tried so far (for tests and the benchmark)

    def __len__(self) -> int:
        return len(self.mappings)

    @classmethod
    def from_sources(cls, db_mappings: Iterable[Mapping], file_mappings: Iterable[Mapping] = ()) -> "MappingTable":
        """Database mappings first, then mapping-file entries (Zaparoo's order)."""
        return cls([*db_mappings, *file_mappings])

    def slow_for(self, token: Token) -> bool:
        """Whether matching this token may run a regex over a value longer than INLINE_MATCH_TEXT: then match it in
        a worker thread (a long ``run`` text must not stall the event loop while RE2 works through it)."""
        return any(len(token_field(token, t)) > INLINE_MATCH_TEXT for t in self._regex_types)

    def match(self, token: Token) -> Mapping | None:
        """The first enabled mapping (creation order) that matches the token, or None."""
        values = {t: token_field(token, t) for t in TYPES}
        best: int | None = None
        for t in TYPES:
            pos = self._exact[t].get(values[t])
            if pos is not None and (best is None or pos < best):
                best = pos
        for pos, type_, matches in self._scan:
            if best is not None and pos > best:
                break  # the index hit comes first in creation order
            self.evaluations += 1
            if matches(values[type_]):
                return self.mappings[pos]
        return self.mappings[best] if best is not None else None

    def apply(self, token: Token) -> Token:
        """The token with the matching mapping's override as its text (unchanged when nothing matches)."""
        mapping = self.match(token)
        return token.with_text(mapping.override) if mapping is not None else token

    validate = staticmethod(Mapping.build)

    @staticmethod
    def from_config(entries: Iterable[Any], source: str = "config") -> list[Mapping]:
        """Mapping-file entries (``[[mappings.entry]]``, dicts or config.MappingEntry) as Mappings, read exactly as
        Zaparoo Core reads them (its ``MappingsFromConfig``):

        ``token_key``: "value" = the text, "data" = the data, anything else ("", "id", "uid", even "text") = the
        UID. ``match_pattern``: ``/re/`` (more than the two slashes) = an RE2 regex searched anywhere; one
        containing ``*`` = every ``*`` removed and the rest found anywhere (``*mario*`` and ``mario*`` alike; a
        lone ``*`` matches every token); else exact. A UID pattern is normalised as the UID is."""
        out = []
        for n, entry in enumerate(entries, 1):
            e = entry if isinstance(entry, dict) else entry.model_dump()
            where = f"{source} entry {n}"
            key = str(e.get("token_key", "") or "")
            type_ = FILE_TOKEN_KEYS.get(key, "uid")
            if key not in FILE_TOKEN_KEYS and key not in QUIET_UID_KEYS:
                log.warning("%s: token_key %r matches the UID, as Zaparoo Core reads it (\"value\" is the text, "
                            "\"data\" the data)", where, key)
            match, pattern = _file_pattern(str(e.get("match_pattern", "")), type_)
            try:
                out.append(Mapping.build(type=type_, match=match, pattern=pattern, override=e.get("zapscript", ""),
                                         label=where, source=where))
            except MappingError as exc:
                raise MappingError(f"{where}: {exc.field}", exc.reason) from None
        return out


MATCH_ALL = "(?s)"  # an empty RE2 pattern: what Core's contains("") does for a match_pattern of only `*`


def _file_pattern(pattern: str, type_: str) -> tuple[str, str]:
    if len(pattern) > 2 and pattern.startswith("/") and pattern.endswith("/"):
        return "regex", pattern[1:-1]
    if "*" not in pattern:
        return "exact", pattern
    needle = pattern.replace("*", "")
    if type_ == "uid":
        needle = normalize_uid(needle)
    return ("partial", needle) if needle else ("regex", MATCH_ALL)


def load_mapping_file(path: str | os.PathLike[str]) -> list[Mapping]:
    """A TOML file of ``[[mappings.entry]]`` tables. MappingError naming the file on any problem."""
    file = Path(path)
    try:
        raw = tomllib.loads(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise MappingError(str(file), f"cannot read mapping file: {exc}") from None
    except RecursionError:  # tomllib recurses per level of [ or {
        raise MappingError(str(file), "cannot read mapping file: arrays or tables nested too deeply") from None
    extra = set(raw) - {"mappings"} or set(raw.get("mappings", {})) - {"entry"}
    if extra:
        raise MappingError(str(file), f"unknown key {sorted(extra)[0]!r} (expected [[mappings.entry]] tables)")
    entries = raw.get("mappings", {}).get("entry", [])
    for n, e in enumerate(entries, 1):
        unknown = set(e) - {"token_key", "match_pattern", "zapscript"}
        if unknown:
            raise MappingError(f"{file} entry {n}: {sorted(unknown)[0]}", "unknown key")
    return MappingTable.from_config(entries, source=str(file))


def mapping_files(directory: str | os.PathLike[str]) -> list[Path]:
    """Every ``*.toml`` in the directory (recursively, in Core's walk order); a missing directory has none."""
    root = Path(directory)
    if not root.is_dir():
        return []
    files = (p for p in root.rglob("*") if p.suffix.lower() == ".toml" and p.is_file())
    return sorted(files, key=lambda p: p.relative_to(root).parts)  # Core's walk: a directory's entries by name


def load_mapping_dir(directory: str | os.PathLike[str]) -> list[Mapping]:
    """The mappings of every file in :func:`mapping_files` order; MappingError on the first broken one."""
    out: list[Mapping] = []
    for file in mapping_files(directory):
        out.extend(load_mapping_file(file))
    return out


def mappings_dir_for(config_path: str | os.PathLike[str]) -> Path:
    """Where mapping files live: ``mappings/`` next to the config file."""
    return Path(config_path).parent / "mappings"
