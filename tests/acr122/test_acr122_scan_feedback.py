"""A tap's outcome on the ACR122U (the App's audioScanFeedback, issue 12), seen as the APDUs the reader receives.

Through a real pcscd, vpcd and pyscard with the virtual card, which records every LED/buzzer and detection-beep
command. The commands are decoded here from the ACR122U API document, not from tagd's constants:

- ``FF 00 52 PP 00`` "set buzzer output during card detection": PP 00 = no beep when a card comes, FF = beep;
- ``FF 00 40 P2 04 T1 T2 RR LL`` "bi-color LED and buzzer control": P2 bit 4/5 = red/green on during T1, bit 6/7 =
  red/green blinks; T1/T2 in 100 ms; RR repetitions; LL = link to buzzer (00 never, 01 during T1, 02 T2, 03 both).
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time

import aiohttp
import pytest

from conftest import FIXTURES, Events
from pcsc_harness import READER, pcscd, wait_slot  # noqa: F401  (fixture)
from tagd.daemon.config import Config
from tagd.daemon.service import Daemon
from tagd.readers.base import ReaderAdded, ReaderWorker, TagSeen, open_reader
from tagd.sim.acr122 import Acr122Card, VirtualAcr122

NO_DETECTION_BEEP = bytes.fromhex("FF 00 52 00 00")
DETECTION_BEEP = bytes.fromhex("FF 00 52 FF 00")


def led_command(apdu: bytes) -> dict:
    """An FF 00 40 command as the document describes it."""
    assert apdu[:3] == b"\xff\x00\x40" and apdu[4] == 0x04 and len(apdu) == 9, apdu.hex()
    p2, t1, t2, repetitions, link = apdu[3], apdu[5], apdu[6], apdu[7], apdu[8]
    return {"red": bool(p2 & 0x10 and p2 & 0x40), "green": bool(p2 & 0x20 and p2 & 0x80),
            "repetitions": repetitions, "beeps": repetitions if link else 0, "t1_ms": t1 * 100}


def wait_for(predicate, timeout=5.0, what="it"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        time.sleep(0.02)


def led_commands(card: Acr122Card) -> list[bytes]:
    return [a for a in card.indications if a[2] == 0x40]


@pytest.fixture
def reader_with(pcscd):  # noqa: F811
    """reader_with(options) → (virtual card holder, worker, events) of acr122:<vpcd reader> with those options."""
    started: list[tuple[VirtualAcr122, ReaderWorker]] = []

    def make(options):
        events = Events()
        sim = VirtualAcr122(pcscd.port)
        worker = ReaderWorker(open_reader(f"acr122:{READER}", options), events.put, retry=0.3).start()
        started.append((sim, worker))
        events.wait(ReaderAdded)
        return sim, worker, events

    yield make
    for sim, worker in started:
        sim.remove()
        wait_slot(present=False)
        worker.stop()


def tap(sim, events, fixture="snes-ntag215.nfc") -> Acr122Card:
    sim.place(FIXTURES / fixture)
    events.wait(TagSeen)
    return sim.card


def signal_from_another_thread(worker, ok):
    thread = threading.Thread(target=worker.reader.signal, args=(ok,))
    thread.start()
    thread.join()


def test_success_is_green_and_one_beep_and_the_firmware_does_not_beep_on_detection(reader_with):
    sim, worker, events = reader_with({"feedback": True, "buzzer": True})
    card = tap(sim, events)
    signal_from_another_thread(worker, True)
    wait_for(lambda: led_commands(card), what="an LED command")
    assert card.indications[0] == NO_DETECTION_BEEP  # a beep on detection would say "fine" too early
    [shown] = led_commands(card)
    assert led_command(shown) == {"red": False, "green": True, "repetitions": 1, "beeps": 1, "t1_ms": 200}


def test_failure_is_red_and_three_beeps(reader_with):
    sim, worker, events = reader_with({"feedback": True, "buzzer": True})
    card = tap(sim, events)
    signal_from_another_thread(worker, False)
    wait_for(lambda: led_commands(card), what="an LED command")
    shown = led_command(led_commands(card)[0])
    assert shown["red"] and not shown["green"] and shown["beeps"] == 3


def test_feedback_off_shows_the_led_without_a_single_beep(reader_with):
    sim, worker, events = reader_with({"feedback": True, "buzzer": False})
    card = tap(sim, events)
    worker.reader.signal(True)
    worker.reader.signal(False)
    wait_for(lambda: len(led_commands(card)) == 2, what="two LED commands")
    assert NO_DETECTION_BEEP in card.indications and DETECTION_BEEP not in card.indications
    ok, failed = map(led_command, led_commands(card))
    assert ok["green"] and failed["red"] and ok["beeps"] == failed["beeps"] == 0


def test_a_card_that_cannot_be_read_is_red_at_the_reader_itself(reader_with, monkeypatch):
    def no_uid(card, capdu):
        return b"\x63\x00" if capdu[:2] == b"\xff\xca" else real(card, capdu)

    real = Acr122Card.apdu
    monkeypatch.setattr(Acr122Card, "apdu", no_uid)
    sim, worker, events = reader_with({"feedback": True, "buzzer": True})
    sim.place(FIXTURES / "snes-ntag215.nfc")
    card = sim.card
    wait_for(lambda: led_commands(card), what="an LED command")
    shown = led_command(led_commands(card)[0])
    assert shown["red"] and shown["beeps"] == 3
    with pytest.raises(AssertionError):
        events.wait(TagSeen, timeout=0.5)  # nothing to launch


def test_without_the_daemons_feedback_the_firmware_beeps_and_tagd_shows_nothing(reader_with):
    sim, worker, events = reader_with({})  # e.g. the CLI's reader: nobody will say how the tap went
    card = tap(sim, events)
    time.sleep(0.3)
    assert card.indications == [DETECTION_BEEP]


# --- through the daemon: the pipeline's outcome reaches the reader, and the sound commands -----------------------


def sound(path, word):
    return [sys.executable, "-c", "import sys; open(sys.argv[1], 'a').write(sys.argv[2] + ' ')", str(path), word]


def make_daemon(tmp_path, scan_feedback=True):
    sounds = tmp_path / "sounds.txt"
    # the launch fails for the Genesis tag (exit 1), goes out for any other
    core = {"type": "exec", "argv": [sys.executable, "-c", "import sys; sys.exit('genesis' in sys.argv[1])", "{text}"]}
    config = Config.model_validate({
        "readers": {"auto_detect": False}, "database": str(tmp_path / "tagd.db"), "api": {"listen": "127.0.0.1:0"},
        "core": [core],
        "audio": {"scan_feedback": scan_feedback, "success_command": sound(sounds, "ok"),
                  "fail_command": sound(sounds, "fail")}})
    return Daemon(config, tmp_path / "config.toml", extra_readers=[f"acr122:{READER}"]), sounds


async def until(predicate, timeout=8.0, what="it"):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout:g} s")
        await asyncio.sleep(0.05)


async def daemon_tap(sim, fixture) -> Acr122Card:
    await asyncio.to_thread(sim.place, FIXTURES / fixture)
    return sim.card


async def daemon_lift(sim):
    await asyncio.to_thread(sim.remove)
    await asyncio.to_thread(wait_slot, False)


async def test_daemon_shows_green_for_a_forwarded_tap_red_for_a_failed_launch_and_plays_the_sounds(tmp_path, pcscd):  # noqa: F811,E501
    daemon, sounds = make_daemon(tmp_path)
    sim = VirtualAcr122(pcscd.port)
    await daemon.start()
    try:
        await until(lambda: daemon.reader_infos(), what="the reader opening")
        card = await daemon_tap(sim, "snes-ntag215.nfc")
        await until(lambda: led_commands(card), what="the success LED command")
        assert led_command(led_commands(card)[0])["green"] and card.indications[0] == NO_DETECTION_BEEP
        await until(lambda: sounds.exists() and "ok" in sounds.read_text(), what="the success sound")
        await daemon_lift(sim)

        card = await daemon_tap(sim, "genesis-classic1k.nfc")
        await until(lambda: led_commands(card), what="the failure LED command")
        shown = led_command(led_commands(card)[0])
        assert shown["red"] and shown["beeps"] == 3
        await until(lambda: "fail" in sounds.read_text(), what="the fail sound")
        assert sounds.read_text().split() == ["ok", "fail"]
        assert [e.success for e in daemon.store.history()] == [False, True]  # the outcome shown is the launch's
    finally:
        await daemon_lift(sim)
        await daemon.stop()


async def test_audio_scan_feedback_off_from_the_app_means_no_beep_and_no_sound(tmp_path, pcscd):  # noqa: F811
    daemon, sounds = make_daemon(tmp_path)
    sim = VirtualAcr122(pcscd.port)
    await daemon.start()
    try:
        await until(lambda: daemon.reader_infos(), what="the reader opening")
        body = {"jsonrpc": "2.0", "id": 1, "method": "settings.update", "params": {"audioScanFeedback": False}}
        async with aiohttp.ClientSession() as http:
            async with http.post(f"http://127.0.0.1:{daemon.api.port}/api", data=json.dumps(body)) as r:
                assert (await r.json())["result"] == {}
        await until(lambda: any(w.info and w.reader.buzzer is False for w in daemon.manager.workers()),
                    what="the reader opening again with the new options")
        for fixture in ("snes-ntag215.nfc", "genesis-classic1k.nfc"):
            card = await daemon_tap(sim, fixture)
            await until(lambda: led_commands(card), what="the LED command")
            assert NO_DETECTION_BEEP in card.indications and DETECTION_BEEP not in card.indications
            assert led_command(led_commands(card)[0])["beeps"] == 0
            await daemon_lift(sim)
        await asyncio.sleep(0.5)
        assert not sounds.exists()
    finally:
        await daemon_lift(sim)
        await daemon.stop()


class _FakeScard:
    """Just enough of pyscard's scard module for PcscReader.open/_connect, recording what is transmitted."""

    SCARD_SCOPE_USER = SCARD_STATE_UNAWARE = SCARD_SHARE_SHARED = SCARD_PROTOCOL_T0 = SCARD_PROTOCOL_T1 = 0

    def __init__(self, name):
        self.name, self.sent = name, []

    def SCardEstablishContext(self, scope):
        return 0, "ctx"

    def SCardListReaders(self, ctx, groups):
        return 0, [self.name]

    def SCardConnect(self, ctx, name, share, protocols):
        return 0, "card", 1

    def SCardTransmit(self, card, protocol, apdu):
        self.sent.append(bytes(apdu))
        return 0, [0x90, 0x00]

    def SCardCancel(self, ctx):
        return 0


@pytest.mark.parametrize("name,acs", [("ACS ACR122U PICC Interface 00 00", True), ("SCM Microsystems SCL3711 00 00", False),
                                      ("Identiv uTrust 3700 F 00 00", False)])
def test_only_an_acr122u_is_sent_acs_led_and_buzzer_commands(monkeypatch, name, acs):
    """FF 00 40 / FF 00 52 are ACS pseudo-APDUs: another PC/SC reader would pass them to the tag, which goes mute."""
    import tagd.readers.acr122 as acr122

    fake = _FakeScard(name)
    monkeypatch.setattr(acr122, "_scard", lambda: fake)
    reader = open_reader("pcsc:" + name.split()[0], {"feedback": True})
    reader.open()
    assert reader._connect()
    reader.signal(True)
    reader.flash_led()
    with reader._indications_lock:
        queued = [apdu for apdu, _card in reader._indications]
    vendor = [a for a in fake.sent + queued if a[:2] == b"\xff\x00" and a[2] in (0x40, 0x52)]
    assert bool(vendor) is acs


def test_an_outcome_is_shown_on_the_card_it_was_for_and_pending_is_orange(monkeypatch):
    """A slow launch's green must not light up the next card; a staged tap shows orange (red and green)."""
    import tagd.readers.acr122 as acr122

    fake = _FakeScard("ACS ACR122U PICC Interface 00 00")
    monkeypatch.setattr(acr122, "_scard", lambda: fake)
    reader = open_reader("acr122:ACR122", {"feedback": True})
    reader.open()
    assert reader._connect()
    reader.signal(None)
    reader.signal(True)
    assert reader._connect()  # the next card, before the reader thread showed them
    reader.signal(False)
    monkeypatch.setattr(reader, "_wait_change", lambda timeout_ms: None)
    fake.sent.clear()
    reader.poll()
    assert [a[3] for a in fake.sent if a[:3] == b"\xff\x00\x40"] == [0x50]  # only the new card's red
    assert acr122.PENDING.led & 0x30 == 0x30  # red and green during T1: orange
