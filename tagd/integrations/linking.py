"""Linking retroshelf by device code (RFC 8628), for both front ends: `tagd link retroshelf` prints the code and
waits in the foreground; the daemon's ``integrations.link`` answers the code at once and waits in a task
(:class:`DeviceLinks`), announcing each change as ``integrations.changed``.

The device code and the access token stay in this module and the credentials file: the answers and
notifications carry only the user code, the verification address and the state.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import time
from typing import Any, Callable

from tagd.integrations.retroshelf import DEFAULT_BASE_URL, POLL_MESSAGES, DeviceCode, DeviceFlowError

log = logging.getLogger(__name__)

# why a flow ended, as the state the page shows
END_STATES = {"access_denied": "denied", "expired_token": "expired"}


def device_name() -> str:
    return f"tagd on {socket.gethostname()}"


def open_account(client: Callable[[str], Any], base: str) -> Any:
    from tagd.integrations.accounts import Retroshelf

    return Retroshelf(client("retroshelf"), base)


async def finish(account: Any, client_id: str, code: DeviceCode, name: str | None = None) -> dict[str, Any]:
    """Wait for the user's approval, complete the link, and return the record to store (it holds the token)."""
    token = await account.wait_for_approval(client_id, code)
    name = name or device_name()
    sync_id = await account.complete_link(token, name)
    return {"base_url": account.base, "client_id": client_id, "access_token": token, "sync_client_id": sync_id,
            "device_name": name, "linked_at": int(time.time())}


def qr_svg(url: str) -> str:
    """The verification address as an inline SVG QR code (segno, loaded only when a link starts)."""
    import segno

    return segno.make(url, error="l").svg_inline(scale=4, border=2, light="#fff")


class DeviceLinks:
    """The daemon's device flows: one per service at a time (a new link replaces one still waiting)."""

    def __init__(self, creds: Any, client: Callable[[str], Any], notify: Callable[[str, Any], None],
                 linked: Callable[[], None]) -> None:
        self.creds = creds
        self.client = client
        self.notify = notify
        self.linked = linked  # the runtime picks the new token up
        self.tasks: dict[str, asyncio.Task[Any]] = {}

    def _changed(self, service: str, state: str, error: str = "") -> None:
        params: dict[str, Any] = {"service": service, "state": state, "linked": state == "linked"}
        if error:
            params["error"] = error
        self.notify("integrations.changed", params)

    async def start(self, client_id: str | None, base_url: str | None) -> dict[str, Any]:
        """Ask for a device code and start waiting for approval in the background; the answer shows the user
        what to open and type. ValueError for a bad base URL or a missing client id; ServiceError from retroshelf."""
        from tagd.integrations.http import check_base_url

        stored = self._stored()
        client_id = client_id or stored.get("client_id") or ""
        if not client_id:
            raise ValueError("clientId is required (the client ID retroshelf approved for this device)")
        try:
            base = check_base_url(base_url or stored.get("base_url") or DEFAULT_BASE_URL)
        except ValueError as exc:
            raise ValueError(f"baseUrl: {exc}") from None
        account = open_account(self.client, base)
        try:
            code = await account.device_code(client_id)
        except BaseException:
            await account.http.aclose()
            raise
        self.cancel("retroshelf")
        self.tasks["retroshelf"] = asyncio.ensure_future(self._wait(account, client_id, code))
        self._changed("retroshelf", "waiting")
        url = code.verification_uri_complete or code.verification_uri
        answer: dict[str, Any] = {"userCode": code.user_code, "verificationUri": code.verification_uri,
                                  "expiresIn": int(code.expires_in), "interval": int(code.interval),
                                  "qrSvg": qr_svg(url)}
        if code.verification_uri_complete:
            answer["verificationUriComplete"] = code.verification_uri_complete
        return answer

    def _stored(self) -> dict[str, Any]:
        from tagd.integrations.credentials import CredentialsError

        try:
            return self.creds.load("retroshelf") or {}
        except CredentialsError:
            return {}

    async def _wait(self, account: Any, client_id: str, code: DeviceCode) -> None:
        from tagd.integrations.http import ServiceError

        try:
            record = await finish(account, client_id, code)
            await asyncio.to_thread(self.creds.save, "retroshelf", record)
        except asyncio.CancelledError:
            raise
        except DeviceFlowError as exc:
            log.info("retroshelf link ended: %s", POLL_MESSAGES.get(exc.code, exc.message))
            self._changed("retroshelf", END_STATES.get(exc.code, "failed"), exc.message)
            return
        except (ServiceError, OSError) as exc:
            log.warning("retroshelf link failed: %s", exc)
            self._changed("retroshelf", "failed", str(exc))
            return
        finally:
            await account.http.aclose()
        log.info("retroshelf linked")
        self.linked()
        self._changed("retroshelf", "linked")

    def cancel(self, service: str) -> bool:
        task = self.tasks.pop(service, None)
        if task is not None and not task.done():
            task.cancel()
            return True
        return False

    async def unlink(self, service: str) -> bool:
        """Forget the service's credentials (and stop a link still waiting); True if there was anything."""
        waiting = self.cancel(service)
        deleted = await asyncio.to_thread(self.creds.delete, service)
        self.linked()
        self._changed(service, "unlinked")
        return deleted or waiting

    async def stop(self) -> None:
        tasks = list(self.tasks.values())
        self.tasks.clear()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
