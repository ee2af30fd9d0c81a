"""wss:// and https:// cores: the system's CAs by default, ``ca_file`` to trust a home server's own certificate.

The server is aiohttp with a self-signed certificate for 127.0.0.1 made by the openssl command line.
"""

from __future__ import annotations

import ssl

import pytest
from aiohttp import web

from fake_core import FakeCore, free_port
from tagd.daemon.config import ConfigError, parse_config
from tagd.daemon.forwarders import ForwardError, build_forwarders
from tagd.token import Token


def server_context(certificate) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(*certificate)
    return ctx


def token() -> Token:
    return Token(uid="04aa", text="**launch.system:snes", type="NTAG")


def forwarders(text: str):
    return build_forwarders(parse_config(text).core)


@pytest.fixture
async def https_hook(certificate):
    received: list[dict] = []

    async def handler(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port, ssl_context=server_context(certificate)).start()
    yield f"https://127.0.0.1:{port}/hook", received
    await runner.cleanup()


async def test_an_https_webhook_trusting_the_servers_certificate_posts(https_hook, certificate):
    url, received = https_hook
    [fw] = forwarders(f'[[core]]\ntype = "webhook"\nurl = "{url}"\nca_file = "{certificate[0]}"')
    await fw.launch(token())
    assert received[0]["text"] == "**launch.system:snes"


async def test_an_https_webhook_with_an_untrusted_certificate_fails_naming_tls(https_hook):
    url, received = https_hook
    [fw] = forwarders(f'[[core]]\ntype = "webhook"\nurl = "{url}"')
    with pytest.raises(ForwardError, match="TLS with 127.0.0.1:[0-9]+ failed: .*self[- ]signed"):
        await fw.launch(token())
    assert received == []


async def test_a_wss_zaparoo_core_with_ca_file_gets_the_run(certificate):
    core = FakeCore(free_port(), ssl_context=server_context(certificate))
    await core.start()
    [fw] = forwarders(f'[[core]]\ntype = "zaparoo"\nurl = "wss://127.0.0.1:{core.port}/api/v0.1"\n'
                      f'ca_file = "{certificate[0]}"')
    await fw.start()
    try:
        await fw.launch(token())
        assert core.methods() == ["run"]
    finally:
        await fw.close()
        await core.stop()


async def test_a_wss_zaparoo_core_with_an_untrusted_certificate_is_not_connected(certificate):
    core = FakeCore(free_port(), ssl_context=server_context(certificate))
    await core.start()
    [fw] = forwarders(f'[[core]]\ntype = "zaparoo"\nurl = "wss://127.0.0.1:{core.port}/api/v0.1"\ntimeout = 1')
    await fw.start()
    try:
        with pytest.raises(ForwardError, match="not connected.*TLS"):
            await fw.launch(token())
        assert core.methods() == []
    finally:
        await fw.close()
        await core.stop()


@pytest.mark.parametrize("content", [None, "not a certificate"])
def test_a_ca_file_that_is_missing_or_not_pem_is_a_config_error_naming_it(tmp_path, content):
    path = tmp_path / "ca.pem"
    if content is not None:
        path.write_text(content)
    with pytest.raises(ConfigError, match=r"core\[0\]\.ca_file: .*cannot load .*ca\.pem"):
        parse_config(f'[[core]]\ntype = "webhook"\nurl = "https://x"\nca_file = "{path}"', "c.toml")
