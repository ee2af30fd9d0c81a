"""PN532 tap→token and removal benchmark, tagd vs nfcpy, through the emulator at real UART speeds, one run.

For NTAG213/215/216 holding a 40-byte and a 400-byte ZapScript, at each line speed:

- ``pinned``: both at 115200 baud. nfcpy raises the line to 921600 by itself when the port takes it
  (its stty probe), so here the probe is told only 115200 works, as on a UART that cannot go faster.
- ``fastest``: each at the fastest speed it supports: nfcpy's own choice (921600), tagd's ``baud``
  option at 921600 (SetSerialBaudrate after open).

Taps and removals come at random phases (the tag is held a random 0.1–0.4 s; nfcpy's tag arrives at a
random point of its poll cycle), and the table gives the median and the max of each.

The floor is what no reader can beat on the same wire and tag, with tagd's way of reading: the bytes on
the critical path after the tag arrives (the answer of the InListPassiveTarget already waiting, then
GET_VERSION — the CC can lie, so the kind needs it — and the FAST_READs of pages 3 to the end of the
NDEF TLV, each command + ACK + answer) at the line speed, plus the RF time the emulator charges for each
(tagd.sim.rf_time: activation, frames at 106 kbps). The ratio is tagd's median over the floor.
Target: ≤ 1.25 × floor. The last output line is one JSON object with every figure.

    python bench/pn532_latency.py [--taps 15] [--no-nfcpy] [--speeds pinned,fastest]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import statistics
import subprocess
import sys
import threading
import time
import uuid

from tagd.cli.tags import make_dump
from tagd.ndef import tlv, type2
from tagd.ndef.records import text_message
from tagd.readers.base import ReaderAdded, ReaderWorker, TagGone, TagSeen
from tagd.readers.pn532.commands import Command, timeout_seconds
from tagd.readers.pn532.frames import ACK, TFI_CHIP, encode_command, encode_frame
from tagd.readers.pn532.reader import PRESENCE_RF_TIMEOUT, Pn532Reader
from tagd.readers.tagio import FIRST_READ_END, MAX_FAST_READ
from tagd.sim import rf_time
from tagd.sim.pn532 import Pn532Emulator
from tagd.sim.tags import EmulatedTag

PINNED = 115200
FASTEST = 921600
KINDS = ("ntag213", "ntag215", "ntag216")
SIZES = (40, 400)
TARGET_RATIO = 1.25
HOLD = (0.1, 0.4)  # seconds a tag stays, uniformly random: removal at a random phase of the presence checks


def zapscript(n: int) -> str:
    base = "**launch.search:Super Mario World (USA)||**launch.system:snes||"
    return (base * (n // len(base) + 1))[:n]


def exchange_bytes(command: bytes, answer_len: int) -> int:
    """Command frame + ACK + answer frame (status byte included) of one InCommunicateThru."""
    return len(encode_command(Command.IN_COMMUNICATE_THRU, command)) + len(ACK) + \
        len(encode_frame(TFI_CHIP, bytes(2 + answer_len)))


def floor(kind: str, message_len: int, baud: int) -> dict:
    """The critical path after the tag arrives, as bytes on the wire and RF time (see the module text)."""
    uid_len = 7
    listing = len(encode_frame(TFI_CHIP, bytes(6 + uid_len)))  # D5 4B 01 01 ATQA SAK len UID: the answer only
    rf = rf_time.activation_time(uid_len)
    wire = listing
    wire += exchange_bytes(b"\x60", 8)
    rf += rf_time.exchange_time(1, 8)
    end = type2.DATA_START + tlv.header_size(message_len) + message_len  # first byte after the TLV
    last = max(FIRST_READ_END, -(-end // 4) - 1)
    last = min(last, type2.TYPE2_KINDS[kind].pages - 1)
    first = 3
    while first <= last:  # tagd's first FAST_READ is 3..19, then exactly the rest, 60 pages at most each
        stop = min(last, first + MAX_FAST_READ - 1, FIRST_READ_END if first == 3 else last)
        n = stop - first + 1
        wire += exchange_bytes(b"\x3a\x00\x00", 4 * n)
        rf += rf_time.exchange_time(3, 4 * n)
        first = stop + 1
    wire_s = wire * 10 / baud
    return {"bytes": wire, "wire_ms": round(wire_s * 1000, 2), "rf_ms": round(rf * 1000, 2),
            "ms": round((wire_s + rf) * 1000, 2)}


def removal_floor(baud: int) -> float:
    """One presence check of a tag that has left: READ 0 out, ACK, RetryTimeout, status back (ms)."""
    wire = len(encode_command(Command.IN_COMMUNICATE_THRU, b"\x30\x00")) + len(ACK) + \
        len(encode_frame(TFI_CHIP, b"\x43\x01"))
    return round((wire * 10 / baud + rf_time.no_answer_time(b"\x30\x00", timeout_seconds(PRESENCE_RF_TIMEOUT)))
                 * 1000, 2)


def summary(values: list[float]) -> dict:
    return {"median_ms": round(statistics.median(values), 2), "max_ms": round(max(values), 2), "n": len(values)}


def bench_tagd(tag: EmulatedTag, taps: int, baud: int, rng: random.Random) -> dict:
    emu = Pn532Emulator(baud=PINNED)  # the chip powers up at 115200; the driver switches when asked
    path = emu.start()
    events: queue.Queue = queue.Queue()
    worker = ReaderWorker(Pn532Reader(path, {"baud": baud}), lambda ev: events.put((time.monotonic(), ev))).start()

    def next_event(kind, timeout=5.0):
        deadline = time.monotonic() + timeout
        while True:
            t, ev = events.get(timeout=max(0.01, deadline - time.monotonic()))
            if isinstance(ev, kind):
                return t, ev

    next_event(ReaderAdded)
    assert emu.baud == baud, f"the line runs at {emu.baud}, not {baud}"
    time.sleep(0.1)
    tap_ms, gone_ms, wire = [], [], []
    try:
        for _ in range(taps):
            emu.reset_stats()
            t0 = time.monotonic()
            emu.place(tag)
            t1, seen = next_event(TagSeen)
            tap_ms.append((t1 - t0) * 1000)
            wire.append(emu.bytes_in + emu.bytes_out)
            time.sleep(rng.uniform(*HOLD))
            t0 = time.monotonic()
            emu.remove()
            t1, _ = next_event(TagGone)
            gone_ms.append((t1 - t0) * 1000)
            time.sleep(rng.uniform(0.05, 0.15))
        text_ok = seen.token.text is not None
    finally:
        worker.stop()
        emu.stop()
    return {"tap": summary(tap_ms), "removal": summary(gone_ms), "wire_bytes": int(statistics.median(wire)),
            "text_ok": text_ok, "baud": baud}


class _PinnedStty:
    """nfcpy's stty probe, answered as a UART that only does ``baud`` (the rest of ``os`` unchanged)."""

    def __init__(self, baud: int) -> None:
        self.baud = baud

    def __getattr__(self, name):
        return getattr(os, name)

    def system(self, command: str) -> int:
        if command.startswith("stty"):
            return 0 if f" {self.baud} " in command else 1
        return os.system(command)


def bench_nfcpy(tag: EmulatedTag, taps: int, pinned: bool, rng: random.Random) -> dict | None:
    try:
        import nfc
        import nfc.clf.pn532 as nfcpy_pn532
    except ImportError:
        return None
    if not os.access("/dev", os.W_OK):
        return None
    name = f"tagdbench{uuid.uuid4().hex[:6]}"
    emu = Pn532Emulator(baud=PINNED)
    emu.start()
    emu.link(f"/dev/{name}")
    real_os = nfcpy_pn532.os
    if pinned:
        nfcpy_pn532.os = _PinnedStty(PINNED)
    tap_ms, gone_ms = [], []
    try:
        clf = nfc.ContactlessFrontend(f"tty:{name}:pn532")
        baud = emu.baud
        try:
            for _ in range(taps):
                got: dict = {}

                def on_connect(t):
                    got["text"] = t.ndef.records[0].text if t.ndef and t.ndef.records else ""
                    got["t"] = time.monotonic()
                    return True  # wait for the tag to leave

                def on_release(t):
                    got["gone"] = time.monotonic()
                    return True

                start = time.monotonic()
                th = threading.Thread(target=clf.connect, kwargs={
                    "rdwr": {"on-connect": on_connect, "on-release": on_release},
                    "terminate": lambda: "gone" in got or time.monotonic() - start > 15})
                th.start()
                time.sleep(0.2 + rng.uniform(0, 0.3))  # the tag arrives at a random point of nfcpy's poll cycle
                t0 = time.monotonic()
                emu.place(tag)
                deadline = time.monotonic() + 10
                while "t" not in got and time.monotonic() < deadline:
                    time.sleep(0.001)
                time.sleep(rng.uniform(*HOLD))
                t_remove = time.monotonic()
                emu.remove()
                th.join(15)
                if "t" in got:
                    tap_ms.append((got["t"] - t0) * 1000)
                if "gone" in got:
                    gone_ms.append((got["gone"] - t_remove) * 1000)
                time.sleep(0.1)
        finally:
            clf.close()
    finally:
        nfcpy_pn532.os = real_os
        emu.stop()
    if not tap_ms:
        return None
    return {"tap": summary(tap_ms), "removal": summary(gone_ms) if gone_ms else None, "baud": baud}


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


def fmt(r: dict | None, key: str) -> str:
    s = (r or {}).get(key)
    return f"{s['median_ms']:7.2f} {s['max_ms']:7.2f}" if s else "    n/a     n/a"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--taps", type=int, default=15)
    ap.add_argument("--no-nfcpy", action="store_true")
    ap.add_argument("--speeds", default="pinned,fastest", help="pinned (both 115200), fastest (each its best)")
    ap.add_argument("--seed", type=int, default=None, help="random phases from this seed (default: a fresh one)")
    args = ap.parse_args()
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    results: dict = {"seed": seed, "target_ratio": TARGET_RATIO, "runs": {}}
    print(f"{'case':14s} {'speed':8s} | {'tagd tap med/max':16s} | {'floor':6s} {'ratio':5s} | "
          f"{'nfcpy tap med/max':17s} | {'tagd rm med/max':15s} | {'nfcpy rm med/max':16s}")
    for speed in args.speeds.split(","):
        baud = PINNED if speed == "pinned" else FASTEST
        run: dict = {"removal_floor_ms": removal_floor(baud)}
        for kind in KINDS:
            for size in SIZES:
                case = f"{kind}/{size}B"
                message = text_message(zapscript(size))
                try:
                    tag = EmulatedTag(make_dump(kind, message))
                except ValueError as exc:  # 400 bytes do not fit an NTAG213
                    run[case] = {"n/a": str(exc)}
                    print(f"{case:14s} {speed:8s} | n/a ({exc})", flush=True)
                    continue
                r: dict = {"floor": floor(kind, len(message), baud), "tagd": bench_tagd(tag, args.taps, baud, rng)}
                r["ratio"] = round(r["tagd"]["tap"]["median_ms"] / r["floor"]["ms"], 3)
                r["within_target"] = r["ratio"] <= TARGET_RATIO
                if not args.no_nfcpy:
                    n = max(5, args.taps // 2)
                    r["nfcpy"] = bench_nfcpy(EmulatedTag(make_dump(kind, message)), n, speed == "pinned", rng)
                run[case] = r
                nf = r.get("nfcpy") or {}
                label = f"{speed}@{r['tagd']['baud'] // 1000}k" + (f"/{nf['baud'] // 1000}k" if nf else "")
                print(f"{case:14s} {label:8s} | {fmt(r['tagd'], 'tap')}  | {r['floor']['ms']:6.2f} {r['ratio']:5.2f} | "
                      f"{fmt(nf, 'tap')}   | {fmt(r['tagd'], 'removal')} | {fmt(nf, 'removal')}", flush=True)
        results["runs"][speed] = run
    results.update(idle_cpu())
    cases = [c for run in results["runs"].values() for k, c in run.items() if isinstance(c, dict) and "tagd" in c]
    results["summary"] = {
        "all_within_target": all(c["within_target"] for c in cases),
        "max_ratio": max(c["ratio"] for c in cases),
        "max_removal_ms": max(c["tagd"]["removal"]["max_ms"] for c in cases),
    }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
