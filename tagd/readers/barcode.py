"""A serial (RS-232) barcode scanner, as Zaparoo Core's ``rs232barcode`` driver reads one.

The scanner sends each code as a line at 9600 baud, ended by CR, LF or both, sometimes framed by STX/ETX; the
code is the token's UID, text and data alike (Core's type ``Barcode``), so a mapping or the code's own text
(ZapScript printed as a barcode) decides the launch. There is nothing to lift off a scanner: a code stays the
active token until another is scanned, so scanning the same code twice launches once, as a ``removable=no``
simple serial device does. The line handling is the simple serial reader's (size limit, junk skipped).
"""

from __future__ import annotations

from tagd.readers.base import Capability, register
from tagd.readers.simpleserial import ScanLine, SimpleSerialReader

TYPE_BARCODE = "Barcode"  # Core's tokens.TypeBarcode


def parse_barcode(line: str) -> ScanLine | None:
    """One scanned line: the code (whitespace, CR and STX/ETX framing removed); None for an empty line."""
    code = line.strip().strip("\r").removeprefix("\x02").removesuffix("\x03")
    return ScanLine(code, code, False, code) if code else None


@register
class BarcodeReader(SimpleSerialReader):
    driver = "rs232barcode"
    capabilities = Capability.READ
    kind = "rs232barcode"
    description = "barcode scanner"
    default_baud = 9600
    token_type = TYPE_BARCODE
    parse = staticmethod(parse_barcode)

    @staticmethod
    def line_ends(chunk: bytes) -> bytes:
        return chunk.replace(b"\r", b"\n")  # a scanner may end a code with CR alone
