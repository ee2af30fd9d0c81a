"""The Token: what a reader saw, in the shape Zaparoo Core's API uses.

A token is the unit that flows through tagd: a reader produces one per tap, the
pipeline maps it, the forwarders send it on and the API reports it. Its JSON form
is Zaparoo's (seeds/001, SPEC §5) so existing clients read it unchanged:

    {"type", "uid", "text", "data", "scanTime", "readerId"?}

`source` and `unsafe` are tagd-internal and never part of the JSON form.
"""

from __future__ import annotations

import base64
import hashlib
import time
from datetime import datetime, timezone
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

# Token types, as Zaparoo Core names them.
TYPE_NTAG = "NTAG"
TYPE_MIFARE = "MIFARE"
TYPE_AMIIBO = "Amiibo"
TYPE_FELICA = "FeliCa"  # Zaparoo Core's name: the token of a FeliCa card (uid = its IDm)
TYPE_API = "api"
TYPE_FILE = "file"
TYPE_SERIAL = "serial"
TYPE_UNKNOWN = "unknown"


def normalize_uid(uid: str) -> str:
    """UID as mappings compare it: lower-case, without ':' separators or whitespace.

    Zaparoo's API document says spaces go too ("04 16 C6 …" as a phone app shows it); Core's code only trims
    the ends. A UID is hex, so dropping inner whitespace can only make a mapping match that was meant to."""
    return "".join(uid.lower().replace(":", "").split())


def reader_id(driver: str, stable_path: str) -> str:
    """Zaparoo's stable reader id: ``<driver>-<hash8>``.

    The driver is lower-cased; the path is lower-cased with backslashes turned
    into slashes; hash8 is the first 5 bytes of sha256(driver NUL path) in
    unpadded base32, lower-cased. ``reader_id("pn532", "1-2.3.1") == "pn532-ujqixjv6"``.
    """
    drv = driver.lower()
    path = stable_path.lower().replace("\\", "/")
    digest = hashlib.sha256(drv.encode() + b"\x00" + path.encode()).digest()
    return f"{drv}-{base64.b32encode(digest[:5]).decode().lower()}"


def format_scan_time(ns: int) -> str:
    """RFC 3339 with nanoseconds and the local UTC offset, as Go's time.RFC3339Nano prints it
    (trailing zeros of the fraction dropped, as Go does)."""
    secs, frac = divmod(ns, 1_000_000_000)
    local = datetime.fromtimestamp(secs, timezone.utc).astimezone()
    off = local.utcoffset()
    assert off is not None
    minutes = int(off.total_seconds()) // 60
    zone = "Z" if minutes == 0 else f"{'+' if minutes > 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    fraction = f".{frac:09d}".rstrip("0") if frac else ""
    if fraction == ".":
        fraction = ""
    return local.strftime("%Y-%m-%dT%H:%M:%S") + fraction + zone


class Token(BaseModel):
    """One read of a tag (or an injected scan)."""

    model_config = ConfigDict(frozen=True, populate_by_name=True)

    type: str = TYPE_UNKNOWN
    uid: str = ""
    text: str = ""
    data: str = ""
    scan_ns: int = Field(default_factory=time.time_ns, alias="scanNs")
    reader_id: str | None = Field(default=None, alias="readerId")
    source: str = ""
    unsafe: bool = False

    @property
    def scan_time(self) -> str:
        return format_scan_time(self.scan_ns)

    @property
    def key(self) -> tuple[str, str]:
        """Identity used for de-duplication: the same uid + text is the same token."""
        return (normalize_uid(self.uid), self.text)

    def to_json(self) -> dict[str, Any]:
        """The Zaparoo Token object."""
        out: dict[str, Any] = {
            "type": self.type,
            "uid": self.uid,
            "text": self.text,
            "data": self.data,
            "scanTime": self.scan_time,
        }
        if self.reader_id:
            out["readerId"] = self.reader_id
        return out

    def with_text(self, text: str) -> "Token":
        return self.model_copy(update={"text": text})
