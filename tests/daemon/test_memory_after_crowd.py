"""Memory back after a crowd: a closed connection is freed at once, and once many connections have come and gone the
daemon empties CPython's type cache and trims the heap, once (bench/stress.py measures the RSS this brings back)."""

from __future__ import annotations

import asyncio
import gc
import sys

from tagd.daemon import heap
from tagd.web import server as web_server
from tagd.web.server import HttpServer, Response
from procs import until


async def test_a_give_back_empties_the_type_cache() -> None:
    class Holder:
        result_x = 1

    name = "".join(["result", "_x"])  # a str made at run time, as asyncio's C code makes its attribute names
    refs = sys.getrefcount(name)
    getattr(Holder(), name)
    assert sys.getrefcount(name) == refs + 1, "the type cache took no reference (interpreter changed?)"
    trimmer = heap.Trimmer(delay=0.01)
    trimmer.soon()
    assert await until(lambda: trimmer.trims == 1)
    assert sys.getrefcount(name) == refs, "the type cache still holds a name looked up before the give-back"


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the cycle collector frees it


async def test_a_give_back_collects_cycles_and_looks_past_the_start_up_objects() -> None:
    import weakref

    first, second = heap.Trimmer(delay=0.01), heap.Trimmer(delay=0.01)  # two daemons in one process
    gc.collect()
    gc.disable()  # the cycles must be left to the give-back, not to an automatic collection
    try:
        kept = Node()
        first.freeze_start_up()
        second.freeze_start_up()
        assert gc.get_freeze_count() > 0, "the start-up objects were not set aside"
        frozen = weakref.ref(kept)
        del kept  # garbage now, but set aside: collections pass it over …
        later = weakref.ref(Node())
        first.soon()
        assert await until(lambda: first.trims == 1)
        assert later() is None, "the give-back did not collect a cycle made after start"
        assert frozen() is not None
        first.thaw()
        assert gc.get_freeze_count() > 0, "one daemon's thaw unfroze what the other still holds"
        second.close()  # … until the last holder thaws (a reload, or the end)
        assert gc.get_freeze_count() == 0
        first.soon()
        assert await until(lambda: first.trims == 2)
        assert frozen() is None, "thawed garbage was not collected by the next give-back"
        first.close()
        first.soon()  # a connection closing after the stop asks for nothing
        assert first._timer is None
    finally:
        gc.unfreeze()
        gc.enable()


async def test_a_closed_connections_transport_is_freed_without_the_cycle_collector() -> None:
    async def ok(request) -> Response:
        return Response(200, "ok")

    http = HttpServer(ok)
    port = await http.start("127.0.0.1", 0)

    def server_transports() -> int:
        return sum(1 for o in gc.get_objects() if isinstance(o, asyncio.Transport)
                   and (o.get_extra_info("sockname") or ("", 0))[1] == port)

    gc.collect()
    gc.disable()  # what is freed now is freed by reference counting alone
    try:
        for _ in range(20):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            assert (await reader.read()).startswith(b"HTTP/1.1 200")
            writer.close()
        assert await until(lambda: not http._connections)
        await until(lambda: server_transports() == 0, timeout=2)
        assert server_transports() == 0, "closed connections' transports wait for the cycle collector"
    finally:
        gc.enable()
        await http.close()


async def test_a_crowd_of_connections_leaving_asks_once_for_memory_back(monkeypatch) -> None:
    monkeypatch.setattr(web_server, "CROWD", 8)
    calls: list[int] = []

    async def ok(request) -> Response:
        return Response(200, "ok")

    http = HttpServer(ok, after_crowd=lambda: calls.append(len(http._connections)))
    port = await http.start("127.0.0.1", 0)

    async def hold(n: int) -> list[asyncio.StreamWriter]:
        writers = []
        for _ in range(n):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            assert (await reader.readuntil(b"ok")).startswith(b"HTTP/1.1 200")
            writers.append(writer)
        return writers

    async def leave(writers: list[asyncio.StreamWriter]) -> None:
        for writer in writers:
            writer.close()
        assert await until(lambda: not http._connections)

    try:
        await leave(await hold(12))  # a crowd: 12 open at once ≥ CROWD
        assert len(calls) == 1, f"asked {len(calls)} times after one crowd"
        assert calls[0] <= 3, "asked before three quarters of the crowd had gone"
        await leave(await hold(5))  # a few: no crowd
        assert len(calls) == 1
        await leave(await hold(10))  # another crowd, another ask
        assert len(calls) == 2
    finally:
        await http.close()


async def test_the_api_gives_memory_back_once_a_crowd_of_websocket_clients_has_left(tmp_path, monkeypatch) -> None:
    import aiohttp

    import tagd.daemon.service as service
    from tagd.daemon.config import Config
    from tagd.daemon.service import Daemon

    monkeypatch.setattr(web_server, "CROWD", 10)
    monkeypatch.setattr(service, "SETTLE_SECONDS", 0.01)
    config = Config.model_validate({"readers": {"auto_detect": False}, "database": str(tmp_path / "tagd.db"),
                                    "api": {"listen": "127.0.0.1:0"}})
    daemon = Daemon(config, tmp_path / "config.toml")
    await daemon.start()
    try:
        await until(lambda: daemon.api.heap.trims > 0)  # the give-back after start comes first
        daemon.api.heap.delay = 0.05
        before = daemon.api.heap.trims
        assert before == 1
        async with aiohttp.ClientSession() as session:
            sockets = [await session.ws_connect(f"http://127.0.0.1:{daemon.api.port}/api") for _ in range(12)]
            for ws in sockets:
                await ws.send_str('{"jsonrpc": "2.0", "id": 1, "method": "version"}')
                assert "result" in await ws.receive_str()
            for ws in sockets:
                await ws.close()
        await until(lambda: daemon.api.heap.trims > before)
        assert daemon.api.heap.trims == before + 1, "no give-back after 12 clients came and went"
        assert gc.get_freeze_count() > 0, "the start-up objects were not set aside"
        await daemon.apply_config(daemon.config)  # a reload: what the old config held is looked at again
        assert gc.get_freeze_count() == 0
    finally:
        await daemon.stop()
    assert gc.get_freeze_count() == 0, "a stopped daemon left objects frozen"


def _environ(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/environ", "rb") as f:
        pairs = [item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item]
    return {k.decode(): v.decode() for k, v in pairs}


def _run_tagd(tmp_path, env: dict[str, str]) -> tuple[dict[str, str], str]:
    """`tagd run` started as a user would; its environment and command line once it answers /health."""
    import os
    import subprocess
    import urllib.request

    from procs import free_port, wait_until

    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(f'database = "{tmp_path}/tagd.db"\n[readers]\nauto_detect = false\n'
                      f'[api]\nlisten = "127.0.0.1:{port}"\n')
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONMALLOC", "MALLOC_ARENA_MAX")}
    proc = subprocess.Popen([sys.executable, "-m", "tagd", "run", "--config", str(config)], env={**base, **env},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        def up() -> bool:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                    return r.read() == b"OK"
            except OSError:
                return False

        wait_until(up, timeout=20)
        with open(f"/proc/{proc.pid}/cmdline", "rb") as f:  # the pid we started: exec keeps it
            cmdline = f.read().replace(b"\0", b" ").decode().strip()
        return _environ(proc.pid), cmdline
    finally:
        proc.terminate()
        proc.wait(10)


def test_tagd_run_puts_pythons_small_objects_on_glibcs_malloc(tmp_path) -> None:
    env, cmdline = _run_tagd(tmp_path, {})
    assert env.get("PYTHONMALLOC") == "malloc", "tagd run kept Python's arena allocator"
    assert env.get("MALLOC_ARENA_MAX") == "1"
    assert cmdline.endswith(f"-m tagd run --config {tmp_path / 'config.toml'}"), cmdline


def test_a_users_allocator_choice_is_kept(tmp_path) -> None:
    env, _ = _run_tagd(tmp_path, {"PYTHONMALLOC": "pymalloc"})
    assert env.get("PYTHONMALLOC") == "pymalloc"
    assert "MALLOC_ARENA_MAX" not in env, "tagd started again though the user chose an allocator"
    env, _ = _run_tagd(tmp_path, {"MALLOC_ARENA_MAX": "4"})
    assert (env.get("PYTHONMALLOC"), env.get("MALLOC_ARENA_MAX")) == ("malloc", "4")


def test_the_allocator_variables_tagd_set_are_not_passed_on(monkeypatch) -> None:
    from tagd.cli import forget_own_malloc_env

    monkeypatch.setenv("PYTHONMALLOC", "malloc")
    monkeypatch.setenv("MALLOC_ARENA_MAX", "4")  # the user's own
    monkeypatch.setenv("TAGD_MALLOC_ENV", "PYTHONMALLOC")
    forget_own_malloc_env()
    import os

    assert "PYTHONMALLOC" not in os.environ and "TAGD_MALLOC_ENV" not in os.environ
    assert os.environ["MALLOC_ARENA_MAX"] == "4"
    monkeypatch.setenv("TAGD_MALLOC_ENV", "PATH,HOME")  # only the allocator's variables are ever taken out
    forget_own_malloc_env()
    assert "PATH" in os.environ and "HOME" in os.environ


def test_hooks_and_command_cores_get_the_users_environment(tmp_path) -> None:
    import json
    import os
    import subprocess

    from procs import free_port, rpc, wait_until

    port = free_port()
    out = tmp_path / "env.txt"
    config = tmp_path / "config.toml"
    config.write_text(f'database = "{tmp_path}/tagd.db"\n[readers]\nauto_detect = false\n'
                      f'[api]\nlisten = "127.0.0.1:{port}"\n'
                      f'[[core]]\ntype = "exec"\nargv = ["/bin/sh", "-c", "env > {out}"]\n')
    base = {k: v for k, v in os.environ.items() if k not in ("PYTHONMALLOC", "MALLOC_ARENA_MAX")}
    proc = subprocess.Popen([sys.executable, "-m", "tagd", "run", "--config", str(config)], env=base,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: _answers(port), timeout=20)
        assert _environ(proc.pid).get("PYTHONMALLOC") == "malloc"  # tagd itself runs on glibc's malloc …
        assert "result" in rpc(port, "run", {"text": "**echo:x"})
        wait_until(lambda: out.exists() and out.read_text().strip(), timeout=10)
        child = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
        # … not its cores
        assert "PYTHONMALLOC" not in child and "MALLOC_ARENA_MAX" not in child, json.dumps(child)[:300]
        assert "TAGD_MALLOC_ENV" not in child
    finally:
        proc.terminate()
        proc.wait(10)


def _answers(port: int) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
            return r.read() == b"OK"
    except OSError:
        return False


async def test_the_give_back_waits_while_a_tap_or_a_crowd_needs_the_loop() -> None:
    busy = [True]
    trimmer = heap.Trimmer(delay=0.02, busy=lambda: busy[0])
    trimmer.soon()
    await asyncio.sleep(0.15)
    assert trimmer.trims == 0, "memory was given back while the daemon was busy"
    assert trimmer._timer is not None, "the give-back was dropped instead of put off"
    busy[0] = False
    assert await until(lambda: trimmer.trims == 1)
    trimmer.close()


async def test_the_api_is_busy_while_a_tap_is_on_its_way_or_a_crowd_is_connected(monkeypatch) -> None:
    from tagd.daemon.api.server import ApiServer
    from tagd.daemon.api.jsonrpc import Dispatcher

    api = ApiServer(Dispatcher(), [], lambda token: None)
    assert not api._busy()
    launch = asyncio.get_running_loop().create_future()
    api.priority.during(launch)
    assert api._busy()
    launch.set_result(None)
    await asyncio.sleep(0)
    assert not api._busy()
    monkeypatch.setattr(web_server, "CROWD", 2)
    api.http._connections.update({object(), object()})  # type: ignore[arg-type]
    assert api._busy()
