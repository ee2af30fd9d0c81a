"""Tag memory and NDEF, sans-I/O: bytes in, values out.

tlv (NFC Forum TLV blocks) → records (NDEF messages ↔ token text, via ndeflib) → type2 / classic (memory
maps and torn-write-safe write plans) → decode (any tag image → DecodedTag → Token). Readers, dump files
and emulators all go through these, so a tag reads the same whichever way it arrives.
"""
