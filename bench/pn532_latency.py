"""PN532 tap→token benchmark through the emulator paced at a real UART speed, tagd vs nfcpy, one run.

For NTAG213/215/216 holding a 40-byte and a 400-byte ZapScript: median tap→Token time, wire bytes per
tap, the wire-time floor (bytes of one InListPassiveTarget plus the FAST_READs needed, at 86.8 µs a byte),
and the same for nfcpy 1.0.4 reading the same tag through the same emulator. Also: removal notice time
and the idle poll loop's CPU use. The last line of output is one JSON object with every figure.

    python bench/pn532_latency.py [--taps 15] [--no-nfcpy]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import statistics
import subprocess
import sys
import threading
import time
import uuid

from tagd.cli.tags import make_dump
from tagd.ndef import tlv
from tagd.ndef.records import text_message
from tagd.readers.base import ReaderAdded, ReaderWorker, TagGone, TagSeen
from tagd.readers.pn532.frames import ACK, TFI_CHIP, encode_command, encode_frame
from tagd.readers.pn532.reader import Pn532Reader
from tagd.sim.pn532 import Pn532Emulator
from tagd.sim.tags import EmulatedTag

BAUD = 115200
BYTE_TIME = 10 / BAUD
KINDS = ("ntag213", "ntag215", "ntag216")
SIZES = (40, 400)


def zapscript(n: int) -> str:
    base = "**launch.search:Super Mario World (USA)||**launch.system:snes||"
    return (base * (n // len(base) + 1))[:n]


def floor_bytes(message_len: int) -> int:
    """One InListPassiveTarget (command, ACK, answer for a 7-byte UID) + the FAST_READs of pages 3..end of the TLV."""
    listing = len(encode_command(0x4A, b"\x01\x00")) + len(ACK) + len(encode_frame(TFI_CHIP, bytes(13)))
    end = 16 + tlv.header_size(message_len) + message_len  # byte after the TLV
    pages = -(-end // 4) - 3
    total, left = listing, pages
    while left > 0:
        n = min(60, left)
        total += len(encode_command(0x42, b"\x3a\x00\x00")) + len(ACK) + len(encode_frame(TFI_CHIP, bytes(2 + 4 * n)))
        left -= n
    return total


def bench_tagd(tag: EmulatedTag, taps: int) -> dict:
    emu = Pn532Emulator(baud=BAUD)
    path = emu.start()
    events: queue.Queue = queue.Queue()
    stats: list = []

    def sink(ev):
        if isinstance(ev, TagSeen):
            stats.append(emu.bytes_in + emu.bytes_out)
        events.put((time.monotonic(), ev))

    worker = ReaderWorker(Pn532Reader(path), sink).start()

    def next_event(kind, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            t, ev = events.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(ev, kind):
                return t, ev

    next_event(ReaderAdded)
    time.sleep(0.2)
    tap_ms, gone_ms, wire = [], [], []
    try:
        for _ in range(taps):
            emu.reset_stats()
            stats.clear()
            t0 = time.monotonic()
            emu.place(tag)
            t1, seen = next_event(TagSeen)
            tap_ms.append((t1 - t0) * 1000)
            wire.append(stats[0])
            time.sleep(0.15)
            t0 = time.monotonic()
            emu.remove()
            t1, _ = next_event(TagGone)
            gone_ms.append((t1 - t0) * 1000)
            time.sleep(0.1)
        text = seen.token.text
    finally:
        worker.stop()
        emu.stop()
    return {"median_ms": round(statistics.median(tap_ms), 2), "p90_ms": round(sorted(tap_ms)[int(0.9 * len(tap_ms))], 2),
            "wire_bytes": int(statistics.median(wire)), "removal_ms": round(statistics.median(gone_ms), 2),
            "removal_max_ms": round(max(gone_ms), 2), "text_ok": text is not None}


def bench_nfcpy(tag: EmulatedTag, taps: int) -> dict | None:
    try:
        import nfc
    except ImportError:
        return None
    if not os.access("/dev", os.W_OK):
        return None
    name = f"tagdbench{uuid.uuid4().hex[:6]}"
    emu = Pn532Emulator(baud=BAUD)
    emu.start()
    emu.link(f"/dev/{name}")
    times, wire = [], []
    try:
        clf = nfc.ContactlessFrontend(f"tty:{name}:pn532")
        try:
            for _ in range(taps):
                got: dict = {}

                def on_connect(t):
                    got["text"] = t.ndef.records[0].text if t.ndef and t.ndef.records else ""
                    got["t"] = time.monotonic()
                    got["wire"] = emu.bytes_in + emu.bytes_out
                    return False

                start = time.monotonic()
                th = threading.Thread(target=clf.connect, kwargs={
                    "rdwr": {"on-connect": on_connect}, "terminate": lambda: "t" in got or time.monotonic() - start > 10})
                th.start()
                time.sleep(0.3)
                emu.reset_stats()
                t0 = time.monotonic()
                emu.place(tag)
                th.join(15)
                emu.remove()
                if "t" in got:
                    times.append((got["t"] - t0) * 1000)
                    wire.append(got["wire"])
                time.sleep(0.1)
        finally:
            clf.close()
    finally:
        emu.stop()
    if not times:
        return None
    return {"median_ms": round(statistics.median(times), 2), "wire_bytes": int(statistics.median(wire))}


def idle_cpu(seconds: float = 3.0) -> dict:
    """CPU used by a process running only the reader, against an emulator in another process."""
    link = f"/tmp/tagd-bench-{uuid.uuid4().hex[:6]}"
    sim = subprocess.Popen([sys.executable, "-m", "tagd", "sim", "pn532", "--link", link], stdin=subprocess.PIPE,
                           stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    sim.stdout.readline()
    code = f"""
import time, sys
from tagd.readers.base import ReaderWorker
from tagd.readers.pn532.reader import Pn532Reader
w = ReaderWorker(Pn532Reader({link!r}), lambda ev: None).start()
time.sleep(1.0)
for phase in ("absent", "present"):
    c0, t0 = time.process_time(), time.monotonic()
    time.sleep({seconds})
    print(phase, (time.process_time() - c0) / (time.monotonic() - t0) * 100, flush=True)
    sys.stdin.readline()
w.stop()
"""
    reader = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    out = {}
    try:
        out["idle_cpu_pct_no_tag"] = round(float(reader.stdout.readline().split()[1]), 3)
        sim.stdin.write(f"place {make_tag_file()}\n")
        sim.stdin.flush()
        reader.stdin.write("\n")
        reader.stdin.flush()
        out["idle_cpu_pct_tag_present"] = round(float(reader.stdout.readline().split()[1]), 3)
        reader.stdin.write("\n")
        reader.stdin.flush()
        reader.wait(10)
    finally:
        for p in (reader, sim):
            if p.poll() is None:
                p.terminate()
                p.wait(5)
    return out


def make_tag_file() -> str:
    from tagd.ndef.dumps import save
    path = f"/tmp/tagd-bench-tag-{os.getpid()}.nfc"
    save(make_dump("ntag215", text_message(zapscript(40))), path)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--taps", type=int, default=15)
    ap.add_argument("--no-nfcpy", action="store_true")
    args = ap.parse_args()
    results: dict = {"baud": BAUD, "cases": {}}
    for kind in KINDS:
        for size in SIZES:
            case = f"{kind}/{size}B"
            message = text_message(zapscript(size))
            try:
                tag = EmulatedTag(make_dump(kind, message))
            except ValueError as exc:
                results["cases"][case] = {"n/a": str(exc)}
                print(f"{case:14s} n/a ({exc})")
                continue
            floor_b = floor_bytes(len(message))
            floor_ms = floor_b * BYTE_TIME * 1000
            r = {"floor_bytes": floor_b, "floor_ms": round(floor_ms, 2), "tagd": bench_tagd(tag, args.taps)}
            r["target_ms"] = round(1.3 * floor_ms + 20, 2)
            r["tagd_within_target"] = r["tagd"]["median_ms"] <= r["target_ms"]
            if not args.no_nfcpy:
                r["nfcpy"] = bench_nfcpy(EmulatedTag(make_dump(kind, message)), max(5, args.taps // 2))
                if r["nfcpy"]:
                    r["speedup_vs_nfcpy"] = round(r["nfcpy"]["median_ms"] / r["tagd"]["median_ms"], 2)
            results["cases"][case] = r
            print(f"{case:14s} tagd {r['tagd']['median_ms']:7.2f} ms {r['tagd']['wire_bytes']:5d} B | floor "
                  f"{floor_ms:6.2f} ms {floor_b:4d} B | target {r['target_ms']:6.2f} ms | nfcpy "
                  f"{(r.get('nfcpy') or {}).get('median_ms', 'n/a')} ms | removal {r['tagd']['removal_ms']} ms", flush=True)
    results.update(idle_cpu())
    cases = [c for c in results["cases"].values() if "tagd" in c]
    results["summary"] = {
        "all_within_target": all(c["tagd_within_target"] for c in cases),
        "min_speedup_vs_nfcpy": min((c.get("speedup_vs_nfcpy", 0) for c in cases), default=None),
        "max_removal_ms": max(c["tagd"]["removal_max_ms"] for c in cases),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
