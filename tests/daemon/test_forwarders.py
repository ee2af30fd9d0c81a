"""The exec, webhook and stdout forwarders, and building forwarders from [[core]] entries."""

from __future__ import annotations

import asyncio
import io
import json
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from tagd.daemon.config import parse_config
from tagd.daemon.forwarders import ForwardError, build_forwarders, close_all, start_all
from tagd.daemon.forwarders.command import ExecForwarder, expand_argv, token_values
from tagd.daemon.forwarders.stdout import StdoutForwarder
from tagd.daemon.forwarders.webhook import WebhookForwarder
from tagd.token import Token

EVIL = "$(touch /tmp/x); rm -rf `id` && echo {uid} > /dev/null | cat"
TOKEN = Token(uid="04aa", text=EVIL, data="d101", type="NTAG", reader_id="pn532-abcdefgh")


def core(text: str) -> Any:
    return build_forwarders(parse_config(text).core)


def test_build_forwarders_names_and_types() -> None:
    fws = core('[[core]]\ntype = "stdout"\n[[core]]\ntype = "exec"\nargv = ["a"]\n'
               '[[core]]\ntype = "exec"\nargv = ["b"]\nname = "lights"\n[[core]]\ntype = "exec"\nargv = ["c"]\n')
    assert [(type(f).__name__, f.name) for f in fws] == [
        ("StdoutForwarder", "stdout"), ("ExecForwarder", "exec#1"), ("ExecForwarder", "lights"),
        ("ExecForwarder", "exec#3")]


# --- exec -------------------------------------------------------------------

RECORDER = (
    "import json, os, sys; "
    "json.dump({'argv': sys.argv[1:], 'env': {k: v for k, v in os.environ.items() if k.startswith('TAGD_')}}, "
    "open(sys.argv[1], 'w'))"
)


def exec_forwarder(argv: list[str], **kw: Any) -> ExecForwarder:
    [fw] = build_forwarders(parse_config(
        "[[core]]\ntype = \"exec\"\nargv = " + json.dumps(argv) + "".join(f"\n{k} = {json.dumps(v)}" for k, v in kw.items())
    ).core)
    assert isinstance(fw, ExecForwarder)
    return fw


async def test_exec_passes_shell_metacharacters_literally(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    marker = Path("/tmp/x")
    existed = marker.exists()
    fw = exec_forwarder([sys.executable, "-c", RECORDER, str(out), "--text={text}", "{uid}", "{reader_id}:{type}"])
    await fw.launch(TOKEN)
    got = json.loads(out.read_text())
    assert got["argv"] == [str(out), f"--text={EVIL}", "04aa", "pn532-abcdefgh:NTAG"]
    assert marker.exists() == existed  # nothing ran the text
    assert got["env"]["TAGD_TEXT"] == EVIL
    assert {k: got["env"][k] for k in ("TAGD_UID", "TAGD_DATA", "TAGD_TYPE", "TAGD_READER_ID", "TAGD_EVENT")} == {
        "TAGD_UID": "04aa", "TAGD_DATA": "d101", "TAGD_TYPE": "NTAG", "TAGD_READER_ID": "pn532-abcdefgh",
        "TAGD_EVENT": "launch"}


def test_placeholders_are_substituted_in_one_pass() -> None:
    # the text contains "{uid}": it must stay literal, not be replaced by the uid
    assert expand_argv(["{text}"], token_values(TOKEN)) == [EVIL]


@given(st.text(), st.text())
def test_expand_argv_never_evaluates_the_values(text: str, uid: str) -> None:
    values = token_values(Token(text=text, uid=uid))
    assert expand_argv(["{text}", "x{uid}y", "{unknown}"], values) == [text, f"x{uid}y", "{unknown}"]


async def test_exec_nonzero_exit_is_a_failure_quoting_stderr() -> None:
    fw = exec_forwarder([sys.executable, "-c", "import sys; sys.stderr.write('no such game'); sys.exit(3)"])
    with pytest.raises(ForwardError, match="exited with status 3: no such game"):
        await fw.launch(TOKEN)


async def test_exec_timeout_kills_the_command() -> None:
    fw = exec_forwarder([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.3)
    t0 = time.monotonic()
    with pytest.raises(ForwardError, match="did not finish within 0.3 s"):
        await fw.launch(TOKEN)
    assert time.monotonic() - t0 < 5


async def test_exec_missing_program_is_a_failure() -> None:
    fw = exec_forwarder(["/nonexistent/launcher", "{text}"])
    with pytest.raises(ForwardError, match="cannot run '/nonexistent/launcher'"):
        await fw.launch(TOKEN)


async def test_exec_text_with_a_nul_byte_is_a_failure_not_a_crash() -> None:
    fw = exec_forwarder(["/bin/true", "{text}"])
    with pytest.raises(ForwardError):
        await fw.launch(Token(text="a\x00b"))


async def test_exec_stop_argv_runs_on_hold_exit(tmp_path: Path) -> None:
    out = tmp_path / "stop.json"
    fw = exec_forwarder(["/bin/true"], stop_argv=[sys.executable, "-c", RECORDER, str(out)])
    await fw.stop_media()
    assert json.loads(out.read_text())["env"]["TAGD_EVENT"] == "stop"


# --- webhook ----------------------------------------------------------------


@pytest.fixture
async def hook_server():
    received: list[dict[str, Any]] = []
    status = {"code": 200, "delay": 0.0}

    async def handler(request: web.Request) -> web.Response:
        await asyncio.sleep(status["delay"])
        received.append({"path": request.path, "json": await request.json(), "headers": dict(request.headers)})
        return web.Response(status=status["code"])

    app = web.Application()
    app.router.add_post("/{name}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}", received, status
    await runner.cleanup()


def webhook(url: str, **kw: Any) -> WebhookForwarder:
    extra = "".join(f"\n{k} = {json.dumps(v)}" for k, v in kw.items() if k != "headers")
    headers = "".join(f'\n[core.headers]\n{k} = "{v}"' for k, v in kw.get("headers", {}).items())
    [fw] = core(f'[[core]]\ntype = "webhook"\nurl = "{url}"{extra}{headers}')
    assert isinstance(fw, WebhookForwarder)
    return fw


async def test_webhook_posts_the_token_json(hook_server) -> None:
    base, received, _ = hook_server
    fw = webhook(f"{base}/launch", headers={"X-Key": "k1"})
    await start_all([fw])
    try:
        await fw.launch(TOKEN)
    finally:
        await close_all([fw])
    [req] = received
    assert req["json"] == TOKEN.to_json()
    assert req["headers"]["X-Key"] == "k1" and req["headers"]["X-Tagd-Event"] == "launch"


async def test_webhook_non_2xx_is_a_failure(hook_server) -> None:
    base, _, status = hook_server
    status["code"] = 503
    fw = webhook(f"{base}/launch")
    try:
        with pytest.raises(ForwardError, match="answered HTTP 503"):
            await fw.launch(TOKEN)
    finally:
        await fw.close()


async def test_webhook_timeout_is_a_failure(hook_server) -> None:
    base, _, status = hook_server
    status["delay"] = 0.6
    fw = webhook(f"{base}/launch", timeout=0.2)
    try:
        with pytest.raises(ForwardError, match="did not answer within 0.2 s"):
            await fw.launch(TOKEN)
    finally:
        await fw.close()


async def test_webhook_unreachable_is_a_failure() -> None:
    fw = webhook("http://127.0.0.1:9/launch")
    try:
        with pytest.raises(ForwardError, match="POST http://127.0.0.1:9/launch failed"):
            await fw.launch(TOKEN)
    finally:
        await fw.close()


async def test_webhook_stop_url_gets_the_hold_exit(hook_server) -> None:
    base, received, _ = hook_server
    fw = webhook(f"{base}/launch", stop_url=f"{base}/stop")
    try:
        await fw.stop_media()
    finally:
        await fw.close()
    assert received[0]["path"] == "/stop" and received[0]["json"] == {"event": "stop"}


# --- stdout -----------------------------------------------------------------


async def test_stdout_writes_one_flushed_json_line_per_event() -> None:
    buf = io.StringIO()
    fw = StdoutForwarder(stream=buf)
    await fw.launch(TOKEN)
    await fw.stop_media()
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    assert lines == [{"event": "launch", **TOKEN.to_json()}, {"event": "stop"}]


async def test_stdout_closed_stream_is_a_failure() -> None:
    buf = io.StringIO()
    buf.close()
    with pytest.raises(ForwardError, match="cannot write"):
        await StdoutForwarder(stream=buf).launch(TOKEN)
