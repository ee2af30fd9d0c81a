"""The one piece of ZapScript tagd reads itself: next-tag actions, which need the reader and so cannot be forwarded.

tagd forwards token text byte for byte and leaves ZapScript to the core — except a script that is exactly one
``**write:TEXT`` command: "write TEXT to the next tag tapped". Zaparoo Core arms it instead of running it
(service/next_actions.go) and does the write when the next tag arrives (service/pending_write.go); a core behind
tagd has no reader, so tagd does both. Which scripts count follows go-zapscript's parser:

- leading whitespace is skipped; the command name (letters, digits, ``.``) is case-insensitive;
- a second command (after ``||``) makes it not a next-tag action: the script goes to the core as it is;
- the argument: ``^`` escapes the next character (``^n``, ``^r``, ``^t`` are newline, CR, tab), a quote at its
  start quotes it, an unquoted ``,`` starts a second argument and ``?name=`` advanced arguments — either makes
  the command invalid, as does an empty text. ``[[…]]`` expressions are evaluated by Core from its own state;
  tagd has none of it, so a write with one is invalid here too (written literally it would not be what was meant).

The other next-tag action is a launcher override: a script that is exactly ``**launch?launcher=ID`` (no argument,
no other advanced argument) arms "launch the next tap's game with launcher ID". Core keeps it until a reader's
token launches with ``launch``, ``launch.random``/``random``, ``launch.search``, ``launch.title`` or ``launch.last``
and adds ``?launcher=ID`` to that one command (service/next_actions.go, queues.go); it only does so for its own
readers' scans, so for taps it gets from tagd as ``run`` the override would never apply — tagd arms it and
rewrites the next tap's script with :func:`with_launcher`. A launcher with ``[[…]]`` is invalid here (tagd cannot
evaluate it), as is one that is not a launcher ID (letters, digits, ``.``, ``_``, ``-``): tag text must not change
how another tag's script is read.

:func:`next_action` is pure: text in, :class:`NextWrite` / :class:`NextLauncher` / :class:`Invalid` / None out.

The launch guard needs one more reading: does a script change or stop the media that plays? (Core's
``scriptHasMediaDisruptingCommand``.) :func:`media_disrupting` splits the script into its commands as go-zapscript
does and says yes when any of them launches (an auto-launch path, ``@System/Title``, ``**launch*``, ``**mister.mgl``,
the old ``**random``/``**system``), drives a playlist or is ``**stop`` — unless that command targets the background
slot (``?slot=background`` or ``bg``). Coins, keys, ``**execute``, ``**delay``, ``**echo``, HTTP calls pass. A script
it cannot split (an empty one, an unmatched quote, a JSON script) counts as disrupting, as Core stages a script
it cannot parse.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ESCAPES = {"n": "\n", "r": "\r", "t": "\t"}


@dataclass(frozen=True)
class NextWrite:
    """Write ``text`` (one NDEF Text record) to the next tag tapped, not to the one that armed it."""

    text: str


@dataclass(frozen=True)
class NextLauncher:
    """Launch the next tapped token's game with this launcher (a one-shot ``?launcher=`` override)."""

    launcher: str


@dataclass(frozen=True)
class Invalid:
    """A next-tag command that cannot be armed; ``reason`` says why (for the log and history)."""

    reason: str


def _command_name(text: str, i: int) -> tuple[str, int]:
    start = i
    while i < len(text) and (text[i].isascii() and text[i].isalnum() or text[i] == "."):
        i += 1
    return text[start:i].lower(), i


def _argument(text: str, i: int) -> tuple[list[str], bool, int, str | None]:
    """The arguments from ``i``: (args, has advanced args, index after the command, error)."""
    args: list[str] = []
    current, written, arg_start = "", False, i
    while i < len(text):
        ch = text[i]
        if i == arg_start and ch in "\"'":
            end = i + 1
            quoted = ""
            while end < len(text) and text[end] != ch:
                if text[end] == "^" and end + 1 < len(text):
                    end += 1
                    quoted += _ESCAPES.get(text[end], text[end])
                else:
                    quoted += text[end]
                end += 1
            if end >= len(text):
                return args, False, i, "unmatched quote"
            current, written, i = quoted, True, end + 1
            continue
        if ch == "^":
            if i + 1 < len(text):
                current += _ESCAPES.get(text[i + 1], text[i + 1])
                i += 2
            else:
                current += "^"
                i += 1
            written = True
            continue
        if text.startswith("||", i):
            break
        if ch == ",":
            args.append(current.strip())
            current, written, arg_start = "", False, i + 1
            i += 1
            continue
        if ch == "?" and i + 1 < len(text) and text[i + 1].isascii() and text[i + 1].isalpha():
            j = i + 1
            while j < len(text) and (text[j].isascii() and text[j].isalnum() or text[j] == "_"):
                j += 1
            if j < len(text) and text[j] == "=":
                args.append(current.strip())
                end = text.find("||", j)
                return args, True, len(text) if end < 0 else end, None
        if text.startswith("[[", i):
            return args, False, i, "[[…]] expressions are evaluated by Zaparoo Core, not tagd"
        current += ch
        written = written or not ch.isspace()
        i += 1
    if current.strip() or written:
        args.append(current.strip())
    return args, False, i, None


def next_action(text: str) -> NextWrite | NextLauncher | Invalid | None:
    """A next-tag action in this token text, an invalid one, or None (anything else: forward it)."""
    i = len(text) - len(text.lstrip(" \t\r\n"))
    if not text.startswith("**", i):
        return None
    name, i = _command_name(text, i + 2)
    if name == "launch":
        return _launcher_override(text, i)
    if name != "write":
        return None
    if i < len(text) and text[i] in ":?":
        args, advanced, end, error = _argument(text, i + 1 if text[i] == ":" else i)
    elif i == len(text) or text.startswith("||", i):
        args, advanced, end, error = [], False, i, None
    else:
        return None  # "**write x": not a command name in ZapScript (Core would treat it as a launch path)
    rest = text[end:]
    if rest.startswith("||") and rest[2:].strip():
        return None  # more than one command: not a next-tag action (Core runs it as a script)
    if error:
        return Invalid(f"**write: {error}")
    if advanced:
        return Invalid("**write takes no advanced arguments (?name=value)")
    if len(args) != 1 or not args[0].strip():
        return Invalid("**write takes one text: **write:TEXT (quote it if it has a comma)")
    return NextWrite(args[0])


LAUNCHER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")  # Core's launcher IDs: RetroArch, DB9Atari7800, test-launcher
OVERRIDE_ELIGIBLE = frozenset({"launch", "launch.random", "random", "launch.search", "launch.title", "launch.last"})
_ADV_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*=")


def _launcher_override(text: str, i: int) -> NextLauncher | Invalid | None:
    """``**launch?launcher=ID`` and nothing else (from ``i``, after the name): the override; None otherwise."""
    command = text[i:].strip()
    if not command.lower().startswith("?launcher="):
        return None
    parts = split_commands(command)
    if parts is None or len([p for p in parts if p.strip()]) != 1:
        return None  # another command after it: a script for the core
    advanced = advanced_args(parts[0])
    if list(advanced) != ["launcher"]:
        return None  # another advanced argument: not an override (Core's rule)
    launcher = advanced["launcher"].strip()
    if not launcher:
        return None
    if "[[" in launcher:
        return Invalid("**launch?launcher= with a [[…]] expression: Zaparoo Core evaluates those, tagd cannot")
    if not LAUNCHER_ID.fullmatch(launcher):
        return Invalid(f"**launch?launcher=: {launcher[:40]!r} is not a launcher ID (letters, digits, . _ -)")
    return NextLauncher(launcher)


def with_launcher(text: str, launcher: str) -> str | None:
    """The script with ``launcher=ID`` among the advanced arguments of its first command that launches a game
    (replacing one it had; the others kept); None when no command of it launches one (the override then waits
    for the next tap). ``launcher`` must be a :data:`LAUNCHER_ID`."""
    parts = split_commands(text)
    if parts is None:
        return None
    for n, part in enumerate(parts):
        if not part.strip() or _command_of(part) not in OVERRIDE_ELIGIBLE:
            continue
        body = part.rstrip()
        marks = _marks(body)
        first = marks[1][0] if marks and marks[1] else None
        if first is None:
            body += "?launcher=" + launcher
        else:
            pairs = [p for p in _split_unescaped(body[first + 1:], "&") if p.split("=", 1)[0].lower() != "launcher"]
            body = body[:first] + "?" + "&".join(pairs + ["launcher=" + launcher])
        parts[n] = body + part[len(part.rstrip()):]
        return "||".join(parts)
    return None


def advanced_args(command: str) -> dict[str, str]:
    """A command's ``?name=value&…`` advanced arguments (names lower-cased; the last of a repeated name wins)."""
    marks = _marks(command)
    if not marks or not marks[1]:
        return {}
    out: dict[str, str] = {}
    for pair in _split_unescaped(command[marks[1][0] + 1:].rstrip(), "&"):
        name, _, value = pair.partition("=")
        out[name.strip().lower()] = value
    return out


def _split_unescaped(text: str, sep: str) -> list[str]:
    out, start, i = [], 0, 0
    while i < len(text):
        if text[i] == "^":
            i += 2
            continue
        if text[i] == sep:
            out.append(text[start:i])
            start = i + 1
        i += 1
    out.append(text[start:])
    return out


DISRUPTING = frozenset({
    "launch", "launch.system", "launch.random", "launch.search", "launch.title", "launch.last", "mister.mgl",
    "random", "system",  # the deprecated names of launch.random and launch.system
    "playlist.play", "playlist.stop", "playlist.next", "playlist.previous", "playlist.goto", "playlist.pause",
    "playlist.load", "playlist.open", "stop"})
_TRAITS = re.compile(r"(#[A-Za-z_][A-Za-z0-9_]*(=[^\s#]*)?\s*)+")


def _json_end(text: str, i: int) -> int | None:
    """The index after the JSON value that starts with ``{`` at ``i`` (braces counted outside strings, as
    go-zapscript's parseJSONArg does); None if it never closes."""
    depth, in_string, escaped = 0, False, False
    for j in range(i, len(text)):
        c = text[j]
        if escaped:
            escaped = False
        elif c == "\\":
            escaped = True
        elif c == '"':
            in_string = not in_string
        elif not in_string and c == "{":
            depth += 1
        elif not in_string and c == "}":
            depth -= 1
            if depth == 0:
                return j + 1
    return None


def _marks(text: str) -> tuple[list[int], list[int]] | None:
    """Where the script's ``||`` separators are, and the ``?`` that start advanced arguments (``?name=``), outside
    ``^`` escapes, quoted arguments, ``[[…]]`` expressions and ``{…}`` JSON arguments; None when a quote or a JSON
    argument never ends (go-zapscript cannot parse the script)."""
    seps: list[int] = []
    advanced: list[int] = []
    i, arg_start = 0, True
    while i < len(text):
        ch = text[i]
        if ch == "^":
            i, arg_start = i + 2, False
            continue
        if arg_start and ch in "\"'":
            end = i + 1
            while end < len(text) and text[end] != ch:
                end += 2 if text[end] == "^" else 1
            if end >= len(text):
                return None
            i, arg_start = end + 1, False
            continue
        if arg_start and ch == "{":
            after = _json_end(text, i)
            if after is None:
                return None
            i, arg_start = after, False
            continue
        if text.startswith("[[", i):
            end = text.find("]]", i + 2)
            i, arg_start = (len(text) if end < 0 else end + 2), False
            continue
        if text.startswith("||", i):
            seps.append(i)
            i, arg_start = i + 2, True
            continue
        if ch == "?" and _ADV_NAME.match(text, i + 1):
            advanced.append(i)
        arg_start = ch in ":,=&"
        i += 1
    return seps, advanced


def split_commands(text: str) -> list[str] | None:
    """The script's commands, split at ``||`` as go-zapscript splits them (see :func:`_marks`); None if it
    cannot be parsed."""
    marks = _marks(text)
    if marks is None:
        return None
    parts, start = [], 0
    for at in marks[0]:
        parts.append(text[start:at])
        start = at + 2
    parts.append(text[start:])
    return parts


def _command_of(part: str) -> str:
    """The command a piece of script runs: its ``**name``, or ``launch`` for anything else (a path, a URL,
    ``@System/Title``, a name go-zapscript refuses), or "" for traits only (``#key=value``)."""
    body = part.strip()
    if body.startswith("**"):
        name, end = _command_name(body, 2)
        if name and (end == len(body) or body[end] in ":?"):
            return name
        return "launch"
    if body.startswith("#") and _TRAITS.fullmatch(body):
        return ""
    return "launch"


def media_disrupting(text: str) -> bool:
    """Whether the script would change or stop the media that plays (see the module docstring)."""
    stripped = text.strip()
    if not stripped or stripped.startswith("{"):
        return True
    parts = split_commands(stripped)
    if parts is None:
        return True
    for part in parts:
        if not part.strip():
            continue
        name = _command_of(part)
        if name not in DISRUPTING:
            continue
        if advanced_args(part).get("slot", "").strip().lower() not in ("background", "bg"):
            return True
    return False
