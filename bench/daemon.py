"""Daemon benchmark: pipeline latency with 10,000 mappings, API throughput, notification fan-out,
idle memory and start-up time. The last line of output is one JSON object with every figure.

    python bench/daemon.py

- pipeline: scan → forward in process (Pipeline + SQLite store + 10,000 exact UID mappings + 100 regexes),
  time from a TagSeen event to the forwarder's launch; target p99 < 2 ms.
- tokens/s: `tokens` requests pipelined over one WebSocket to `tagd run` in another process; target > 5,000/s.
- fan-out: 200 WebSocket clients of `tagd run`, spread over 4 client processes; a `run` request makes
  tokens.added go to all; per-client latency from sending the request (CLOCK_MONOTONIC is shared by
  every process); target p99 < 50 ms.
- RSS of an idle `tagd run` with two emulated PN532 readers; target < 45 MB. Also printed (no target): the same
  with a zaparoo core configured (its WebSocket client loaded, reconnecting to a core that is down) and a
  regex mapping (google-re2 loaded), the configuration most users run.
- RSS with pairing and mDNS on (target < 45 MB): the same idle `tagd run` advertising `_zaparoo._tcp` (on
  loopback: a bench does not multicast on the LAN), pairing available (its crypto loads on first use). Also
  printed (no target): the same with one client just paired and its encrypted WebSocket open (zeroconf,
  cryptography and ecdsa all loaded).
- start to API ready: from spawning `tagd run` to GET /health answering; target < 0.5 s.
- tap to core (no target; the figure users feel): an emulated PN532 at 115200 baud, `tagd run` with a zaparoo
  core, and a Zaparoo-style core in this process; from the emulator saying the tag is on the reader to the
  core receiving `run` with the mapped text. The PN532 wire time of the read (~25 ms) is most of it.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import aiohttp

from common import free_port, pct


def _post_json(url: str, body: dict) -> dict:
    req = urllib.request.Request(url, json.dumps(body).encode(), {"content-type": "application/json"})
    return json.loads(urllib.request.urlopen(req, timeout=10).read())


async def paired_session(port: int, hold: asyncio.Event) -> None:
    """Pair a client as the Zaparoo App does (tests/pairing/zaparoo_client.py) and keep its encrypted session open
    until ``hold`` is set."""
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "tests", "pairing"))
    from zaparoo_client import EncryptedChannel, PairingClient

    base = f"http://127.0.0.1:{port}"
    pin = _post_json(base + "/api", {"jsonrpc": "2.0", "id": 1, "method": "clients.pair.start"})["result"]["pin"]
    client = PairingClient(pin, "bench")
    start = _post_json(base + "/api/pair/start", client.start_body())
    await asyncio.sleep(1.05)  # one pairing request a second per address
    client.complete(_post_json(base + "/api/pair/finish", client.finish_body(start)))
    channel = EncryptedChannel(client.auth_token, client.pairing_key)
    async with aiohttp.ClientSession() as s, s.ws_connect(base + "/api") as ws:
        await ws.send_str(channel.send({"jsonrpc": "2.0", "id": 1, "method": "version"}))
        assert "result" in channel.receive((await ws.receive(timeout=10)).data)
        await hold.wait()


# --- pipeline -----------------------------------------------------------------

async def bench_pipeline(n_events: int = 2000) -> dict:
    from tagd.daemon.config import Config
    from tagd.daemon.forwarders import Forwarder
    from tagd.daemon.mappings import Mapping, MappingTable
    from tagd.daemon.pipeline import Pipeline
    from tagd.daemon.store import Store
    from tagd.readers.base import ReaderAdded, ReaderInfo, TagGone, TagSeen
    from tagd.token import Token

    launched: dict[str, float] = {}

    class Recorder(Forwarder):
        kind = "bench"

        async def launch(self, token: Token) -> None:
            launched[token.uid] = time.perf_counter()

    tmp = tempfile.mkdtemp()
    store = Store(os.path.join(tmp, "t.db"))
    mappings = [Mapping(id=i, type="uid", match="exact", pattern=f"04{i:012x}", override=f"@SNES/{i}")
                for i in range(10_000)]
    mappings += [Mapping(id=10_000 + i, type="text", match="regex", pattern=f"^zz{i}[a-z]+$", override="x")
                 for i in range(100)]
    config = Config.model_validate({"database": os.path.join(tmp, "t.db")})
    pipe = Pipeline(config, store, MappingTable(mappings), [Recorder("bench")])
    info = ReaderInfo("pn532", "/dev/x", "1-1", "bench")
    await pipe.handle(ReaderAdded(info))
    pipe.connect_grace = 0
    lat = []
    for i in range(n_events):
        uid = f"04{(i * 7919) % 10_000:012x}"
        token = Token(type="NTAG", uid=uid, text="**launch.system:snes", readerId=info.reader_id)
        t0 = time.perf_counter()
        await pipe.handle(TagSeen(info.reader_id, token))
        lat.append((launched[uid] - t0) * 1000)
        await pipe.handle(TagGone(info.reader_id))
    await pipe.stop()
    store.close()
    return {"pipeline_p50_ms": round(pct(lat, 50), 3), "pipeline_p99_ms": round(pct(lat, 99), 3)}


# --- a tagd run process ------------------------------------------------------------

class Tagd:
    def __init__(self, readers: list[str] = (), extra_config: str = ""):
        self.tmp = tempfile.mkdtemp()
        self.port = free_port()
        cfg = os.path.join(self.tmp, "config.toml")
        with open(cfg, "w") as f:
            f.write(f'database = "{self.tmp}/tagd.db"\n[readers]\nauto_detect = false\n'
                    f'[api]\nlisten = "127.0.0.1:{self.port}"\n{extra_config}')
        argv = [sys.executable, "-m", "tagd", "run", "--config", cfg]
        for r in readers:
            argv += ["--reader", r]
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=0.5) as r:
                    if r.read() == b"OK":
                        break
            except OSError:
                time.sleep(0.005)
            if time.monotonic() - self.t0 > 20:
                raise RuntimeError("tagd run did not start")
        self.ready_s = time.monotonic() - self.t0

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return 0.0

    def stop(self):
        self.proc.terminate()
        self.proc.wait(10)


async def bench_tokens_rps(port: int, n: int = 20_000) -> float:
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(f"ws://127.0.0.1:{port}/api") as ws:
            msg = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tokens"})
            for _ in range(200):  # warm-up
                await ws.send_str(msg)
                await ws.receive()
            t0 = time.perf_counter()
            window = 256

            async def sender():
                for _ in range(n):
                    await ws.send_str(msg)

            task = asyncio.ensure_future(sender())
            for _ in range(n):
                await ws.receive()
            await task
            return n / (time.perf_counter() - t0)


FANOUT_PROCESSES = 4  # client processes: one Python process reading 200 sockets would measure itself, not tagd


def _fanout_worker(port: int, n_clients: int, rounds: int, conn) -> None:
    """Holds n_clients WebSockets; for every tokens.added notes when each client got it (CLOCK_MONOTONIC,
    shared by every process on the machine) and sends {round: [times]} back when all rounds are in."""

    async def run() -> dict[int, list[float]]:
        got: dict[int, list[float]] = {}
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as s:
            sockets = [await s.ws_connect(f"ws://127.0.0.1:{port}/api") for _ in range(n_clients)]
            conn.send("connected")

            async def listen(ws):
                for _ in range(rounds):
                    while True:
                        m = json.loads((await ws.receive(timeout=30)).data)
                        if m.get("method") == "tokens.added":
                            got.setdefault(int(m["params"]["text"][5:]), []).append(time.perf_counter())
                            break

            await asyncio.gather(*(listen(ws) for ws in sockets))
            for ws in sockets:
                await ws.close()
        return got

    conn.send(asyncio.run(run()))


async def bench_fanout(port: int, clients: int = 200, rounds: int = 30) -> dict:
    """`run` over HTTP makes tokens.added go to every WebSocket client; latency from sending the request to
    each client's receipt."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    pipes, procs = [], []
    for i in range(FANOUT_PROCESSES):
        parent, child = ctx.Pipe()
        share = clients // FANOUT_PROCESSES + (i < clients % FANOUT_PROCESSES)
        proc = ctx.Process(target=_fanout_worker, args=(port, share, rounds, child), daemon=True)
        proc.start()
        pipes.append(parent)
        procs.append(proc)
    for parent in pipes:
        assert parent.recv() == "connected"
    sent: dict[int, float] = {}
    async with aiohttp.ClientSession() as s:
        await asyncio.sleep(0.3)
        for r in range(rounds):
            body = json.dumps({"jsonrpc": "2.0", "id": r, "method": "run", "params": {"text": f"bench{r}"}})
            sent[r] = time.perf_counter()
            async with s.post(f"http://127.0.0.1:{port}/api", data=body) as resp:
                await resp.read()
            await asyncio.sleep(0.1)
    lat = []
    for parent in pipes:
        for r, times in parent.recv().items():
            lat += [(t - sent[r]) * 1000 for t in times]
    for proc in procs:
        proc.join(10)
    assert len(lat) == clients * rounds, f"{len(lat)} of {clients * rounds} notifications arrived"
    return {"fanout_clients": clients, "fanout_p50_ms": round(pct(lat, 50), 2), "fanout_p99_ms": round(pct(lat, 99), 2)}


async def bench_tap_to_core(taps: int = 20) -> dict:
    """Tap → `run` at the core, through `tagd run` and an emulated PN532 (see the module docstring)."""
    from tagd.web.server import HttpServer, Response, Upgrade

    arrived: asyncio.Queue[tuple[float, str]] = asyncio.Queue()

    async def core_socket(ws) -> None:
        async for text in ws:
            msg = json.loads(text)
            if msg.get("method") == "run":
                arrived.put_nowait((time.perf_counter(), msg["params"]["text"]))
            await ws.send(json.dumps({"jsonrpc": "2.0", "id": msg.get("id"), "result": None}))

    async def route(request):
        return Upgrade(core_socket) if request.wants_websocket else Response(404)

    core = HttpServer(route)
    core_port = await core.start("127.0.0.1", 0)
    link = f"/tmp/tagd-bench-tap-{os.getpid()}"
    tag = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "smw-ntag213.nfc")
    sim = await asyncio.create_subprocess_exec(sys.executable, "-m", "tagd", "sim", "pn532", "--link", link,
                                               "--baud", "115200", stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                               stderr=subprocess.DEVNULL)
    await sim.stdout.readline()
    extra = (f'[[core]]\ntype = "zaparoo"\nurl = "ws://127.0.0.1:{core_port}/api/v0.1"\n'
             '[[mappings.entry]]\ntoken_key = "value"\nmatch_pattern = "@SNES/Super Mario World"\n'
             'zapscript = "**launch:/media/fat/games/SNES/smw.sfc"\n')
    t = await asyncio.to_thread(Tagd, [f"pn532uart:{link}"], extra)

    async def command(line: str) -> float:
        sim.stdin.write(line.encode() + b"\n")
        await sim.stdin.drain()
        while not (await sim.stdout.readline()).startswith(b"ok"):
            pass
        return time.perf_counter()

    lat = []
    try:
        await asyncio.sleep(1.5)  # the reader opens and the core connects
        for _ in range(taps):
            placed = await command(f"place {tag}")
            got, text = await asyncio.wait_for(arrived.get(), 5)
            assert text == "**launch:/media/fat/games/SNES/smw.sfc", text
            lat.append((got - placed) * 1000)
            await command("remove")
            await asyncio.sleep(0.3)  # removal is noticed, so the same tag launches again
    finally:
        await asyncio.to_thread(t.stop)
        sim.terminate()
        await sim.wait()
        await core.close()
    return {"tap_to_core_p50_ms": round(pct(lat, 50), 1), "tap_to_core_max_ms": round(max(lat), 1)}


def main() -> None:
    out: dict = {}
    out.update(asyncio.run(bench_pipeline()))
    print(f"pipeline with 10,000 mappings: p50 {out['pipeline_p50_ms']} ms, p99 {out['pipeline_p99_ms']} ms", flush=True)

    ready = []
    for _ in range(5):
        t = Tagd()
        ready.append(t.ready_s)
        t.stop()
    out["start_to_api_ready_s"] = round(statistics.median(ready), 3)
    print(f"start to API ready: median {out['start_to_api_ready_s']} s over 5 starts", flush=True)

    t = Tagd()
    try:
        out["tokens_per_s"] = round(asyncio.run(bench_tokens_rps(t.port)))
        print(f"`tokens` over one WebSocket: {out['tokens_per_s']} requests/s", flush=True)
        out.update(asyncio.run(bench_fanout(t.port)))
        print(f"fan-out to {out['fanout_clients']} clients: p50 {out['fanout_p50_ms']} ms, p99 {out['fanout_p99_ms']} ms",
              flush=True)
    finally:
        t.stop()

    out.update(asyncio.run(bench_tap_to_core()))
    print(f"tap to core (emulated PN532 at 115200 baud → tagd run → run at the core): "
          f"p50 {out['tap_to_core_p50_ms']} ms, max {out['tap_to_core_max_ms']} ms", flush=True)

    sims, links = [], []
    for i in range(2):
        link = f"/tmp/tagd-bench-{os.getpid()}-{i}"
        p = subprocess.Popen([sys.executable, "-m", "tagd", "sim", "pn532", "--link", link], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        p.stdout.readline()
        sims.append(p)
        links.append(link)
    core_and_regex = (f'[[core]]\ntype = "zaparoo"\nurl = "ws://127.0.0.1:{free_port()}/api/v0.1"\n'
                      '[[mappings.entry]]\ntoken_key = "value"\nmatch_pattern = "/^mario.*$/"\nzapscript = "@SNES/x"\n')
    pairing_mdns = '[service.discovery]\ninstance_name = "tagd-bench"\ninterfaces = ["127.0.0.1"]\n'
    try:
        for key, extra in (("idle_rss_mb_two_readers", ""), ("idle_rss_mb_two_readers_core_regex", core_and_regex),
                           ("idle_rss_mb_pairing_mdns", pairing_mdns), ("idle_rss_mb_encrypted_session", pairing_mdns)):
            t = Tagd([f"pn532uart:{link}" for link in links], extra)
            session = None
            try:
                if key == "idle_rss_mb_encrypted_session":
                    loop = asyncio.new_event_loop()
                    hold = asyncio.Event()
                    session = loop.create_task(paired_session(t.port, hold))
                    loop.run_until_complete(asyncio.sleep(2))  # paired and encrypted by now
                    if session.done():
                        session.result()  # raise what went wrong
                time.sleep(3)
                readers = json.loads(urllib.request.urlopen(urllib.request.Request(
                    f"http://127.0.0.1:{t.port}/api", json.dumps({"jsonrpc": "2.0", "id": 1, "method": "readers"}).encode()
                )).read())["result"]["readers"]
                out[key] = round(t.rss_mb(), 1)
                out["idle_readers_connected"] = len(readers)
                what = {"idle_rss_mb_two_readers_core_regex": " (+ zaparoo core, regex mapping)",
                        "idle_rss_mb_pairing_mdns": " (+ mDNS advertising, pairing available)",
                        "idle_rss_mb_encrypted_session": " (+ mDNS, a client just paired, its encrypted session open)",
                        }.get(key, "")
                print(f"idle RSS with {len(readers)} emulated readers{what}: {out[key]} MB", flush=True)
            finally:
                if session is not None:
                    hold.set()
                    loop.run_until_complete(session)
                    loop.close()
                t.stop()
    finally:
        for p in sims:
            p.terminate()
            p.wait(5)
    out["targets_met"] = {
        "pipeline_p99_lt_2ms": out["pipeline_p99_ms"] < 2, "tokens_gt_5000_per_s": out["tokens_per_s"] > 5000,
        "fanout_p99_lt_50ms": out["fanout_p99_ms"] < 50, "rss_lt_45mb": out["idle_rss_mb_two_readers"] < 45,
        "rss_pairing_mdns_lt_45mb": out["idle_rss_mb_pairing_mdns"] < 45,
        "ready_lt_0_5s": out["start_to_api_ready_s"] < 0.5}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
