"""Fabric benchmark: many satellite readers → mosquitto → one hub `tagd run` → launches.

    python bench/fabric.py [--readers 50] [--rate 2] [--seconds 60] [--procs 5]

A mosquitto broker on a free loopback port (started here, stopped at the end); a hub `tagd run` whose `mqtt`
reader subscribes ``tagd/+`` and whose core is `mqtt` (it publishes each launch's text to ``bench/launch``);
``--procs`` satellite processes, each publishing, for its share of ``--readers`` readers, the satellite
protocol exactly as a tagd satellite does (retained reader state, then one QoS-1 tap event every 1/rate s per
reader, each with a unique text, the tap's CLOCK_MONOTONIC time in it). This process subscribes to
``bench/launch`` and counts, per tap text: launched once, lost (never launched), duplicated (more than once);
tap→launch latency is the time from the satellite publishing to this process receiving the launch
(CLOCK_MONOTONIC is shared by every process). Targets: 0 lost, 0 duplicated, p99 < 50 ms. Hub CPU (user+sys
seconds over the run, as % of one core) and peak RSS are printed. Bounded: it stops by itself after
``--seconds`` + a 10 s drain. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import paho.mqtt.client as mqtt

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

from tagd.daemon.fabric import topics as fab  # noqa: E402
from tagd.token import Token  # noqa: E402

from common import free_port, pct  # noqa: E402 (bench/common.py)


def satellite(port: int, node: str, readers: int, rate: float, seconds: float, start_at: float) -> None:
    """One satellite process: ``readers`` readers, each tapping ``rate`` times a second."""
    topics = fab.Topics(node)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{node}", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(1000)
    client.connect("127.0.0.1", port)
    client.loop_start()
    rids = [f"pn532-{node}{i:03d}" for i in range(readers)]
    for rid in rids:
        client.publish(topics.reader(rid), fab.reader_payload(rid, "pn532uart", f"/dev/ttyUSB{rid[-3:]}", "PN532",
                                                              True, True), qos=1, retain=True).wait_for_publish(5)
    client.publish(topics.state, fab.ONLINE, qos=1, retain=True).wait_for_publish(5)
    while time.monotonic() < start_at:
        time.sleep(0.01)
    period = 1.0 / rate
    n = 0
    step = period / readers  # spread the readers' taps over the period
    end = start_at + seconds
    while True:
        for i, rid in enumerate(rids):
            due = start_at + n * period + i * step
            if due >= end:
                client.loop_stop()
                client.disconnect()
                return
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            sent = time.monotonic()
            text = f"tap {node} {rid} {n} {sent:.6f}"
            client.publish(topics.events, fab.event_payload(rid, "tag", Token(type="NTAG", uid=f"04{n:06x}{i:02x}",
                                                                               text=text)), qos=1)
        n += 1


class Hub:
    def __init__(self, tmp: str, port: int) -> None:
        self.api = free_port()
        cfg = os.path.join(tmp, "hub.toml")
        with open(cfg, "w") as f:
            f.write(f'database = "{tmp}/hub.db"\n[api]\nlisten = "127.0.0.1:{self.api}"\n'
                    f'[readers]\nauto_detect = false\n[[readers.connect]]\ndriver = "mqtt"\n'
                    f'path = "127.0.0.1:{port}/tagd/+"\n'
                    f'[[core]]\ntype = "mqtt"\nhost = "127.0.0.1"\nport = {port}\ntopic = "bench/launch"\nqos = 0\n')
        self.proc = subprocess.Popen([sys.executable, "-m", "tagd", "run", "--config", cfg],
                                     stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "hub.log"), "w"))
        deadline = time.monotonic() + 10
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.api}/health", timeout=0.5).read()
                break
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    raise RuntimeError(f"hub did not start: see {tmp}/hub.log")
                time.sleep(0.05)

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        return float("nan")

    def readers(self) -> int:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "readers"}).encode()
        req = urllib.request.Request(f"http://127.0.0.1:{self.api}/api", body, {"Content-Type": "application/json"})
        answer = json.loads(urllib.request.urlopen(req, timeout=2).read())
        return len(answer["result"]["readers"])

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--readers", type=int, default=50)
    ap.add_argument("--rate", type=float, default=2.0, help="taps per second per reader")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--procs", type=int, default=5, help="satellite processes")
    args = ap.parse_args()
    mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    tmp = tempfile.mkdtemp(prefix="tagd-fabric-")
    port = free_port()
    with open(os.path.join(tmp, "mosquitto.conf"), "w") as f:
        f.write(f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n")
    broker = subprocess.Popen([mosquitto, "-c", os.path.join(tmp, "mosquitto.conf")], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(0.3)
    received: "queue.Queue[tuple[float, str]]" = queue.Queue()
    sub = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
    sub.on_message = lambda c, u, m: received.put((time.monotonic(), m.payload.decode()))
    sub.connect("127.0.0.1", port)
    sub.subscribe("bench/launch", qos=1)
    sub.loop_start()
    hub = Hub(tmp, port)
    procs = []
    try:
        per = [args.readers // args.procs + (1 if i < args.readers % args.procs else 0) for i in range(args.procs)]
        start_at = time.monotonic() + 2.0
        for i, n in enumerate(per):
            p = mp.Process(target=satellite, args=(port, f"room{i}", n, args.rate, args.seconds, start_at))
            p.start()
            procs.append(p)
        time.sleep(1.5)
        readers_seen = hub.readers()
        cpu0, rss_peak = hub.cpu_seconds(), hub.rss_mb()
        t0 = time.monotonic()
        while any(p.is_alive() for p in procs):
            rss_peak = max(rss_peak, hub.rss_mb())
            time.sleep(0.5)
        expected = sum(int(args.seconds * args.rate) for _ in range(args.readers))
        drain_until = time.monotonic() + 10
        counts: dict[str, int] = {}
        latencies: list[float] = []
        while time.monotonic() < drain_until:
            try:
                at, text = received.get(timeout=0.2)
            except queue.Empty:
                if sum(counts.values()) >= expected:
                    break
                continue
            counts[text] = counts.get(text, 0) + 1
            if counts[text] == 1:
                latencies.append((at - float(text.rsplit(" ", 1)[1])) * 1000)
        cpu = hub.cpu_seconds() - cpu0
        wall = time.monotonic() - t0
        rss_peak = max(rss_peak, hub.rss_mb())
    finally:
        for p in procs:
            p.join(5)
        hub.stop()
        sub.loop_stop()
        broker.terminate()
        broker.wait(5)
    launched = len(counts)
    result = {"readers": args.readers, "readers_on_hub": readers_seen, "taps_sent": expected,
              "launched": launched, "lost": expected - launched,
              "duplicated": sum(c - 1 for c in counts.values()),
              "p50_ms": round(pct(latencies, 50), 2), "p99_ms": round(pct(latencies, 99), 2),
              "max_ms": round(max(latencies), 2) if latencies else None,
              "hub_cpu_pct": round(100 * cpu / wall, 1), "hub_rss_peak_mb": round(rss_peak, 1)}
    print(f"satellite readers {args.readers} ({readers_seen} shown by the hub) x {args.rate:g} taps/s "
          f"for {args.seconds:g} s through mosquitto")
    print(f"taps sent {expected}, launched {launched}, lost {result['lost']}, duplicated {result['duplicated']}"
          f"   (targets: 0 lost, 0 duplicated)")
    print(f"tap -> launch p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, max {result['max_ms']} ms"
          f"   (target p99 < 50 ms)")
    print(f"hub CPU {result['hub_cpu_pct']}% of one core, peak RSS {result['hub_rss_peak_mb']} MB")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
