"""The Zaparoo App's ``settings`` and ``settings.update`` (SPEC §5): the config's switches, and the keys it is asked
to take — which of Zaparoo's keys tagd has, which it only accepts (Core's own), which are the core's (profiles).

As in Core, ``encryption`` is changed only by a caller on this machine: a phone must not switch off what protects
it, even a paired admin's. The file side (where each key lives, writing it) is config/settings.py and writing.py.
"""

from __future__ import annotations

from typing import Any

from tagd.daemon.api.access import CALLER
from tagd.daemon.api.env import ApiEnv
from tagd.daemon.api.jsonrpc import Dispatcher, Params, RpcError, params_of
from tagd.daemon.config import ConfigError


class ReaderConnectionParams(Params):
    driver: str
    path: str = ""
    idSource: str = ""
    enabled: bool = True


class SystemDefaultParams(Params):
    system: str
    launcher: str = ""
    beforeExit: str = ""


class SettingsParams(Params):
    """settings.update: the document's keys, all optional; which were given is ``model_fields_set``."""

    runZapScript: bool = True
    debugLogging: bool = False
    audioScanFeedback: bool = False
    readersAutoDetect: bool = True
    readersScanMode: str = "tap"
    readersScanExitDelay: float = 0.0
    readersScanIgnoreSystems: list[str] = []
    errorReporting: bool = False
    encryption: bool = False
    readersConnect: list[ReaderConnectionParams] = []
    systemDefaults: list[SystemDefaultParams] = []
    launchGuardEnabled: bool = False
    launchGuardTimeout: float = 0.0
    launchGuardDelay: float = 0.0
    launchGuardRequireConfirm: bool = False


# Keys Zaparoo Core's settings.update takes for settings tagd does not have: accepted and ignored (the Zaparoo App
# may send them), where any other key is refused, so a misspelt key is not silently a no-op.
CORE_ONLY_SETTINGS = frozenset({
    "backupRemoteEnabled", "playtimeSyncEnabled", "updateChannel", "backupRemoteSchedule",
    "audioVolume", "updateCheck", "updateInstall"})
# Profile settings are the core's (profiles live there): sent on to it, and read from it.
PROFILE_SETTINGS = {"profilesRequireForLaunch": bool, "profilesSwapData": bool}


def register(rpc: Dispatcher, env: ApiEnv) -> None:
    @rpc.method("settings")
    async def settings(_: Any) -> Any:
        out = env.config.settings_json()
        if env.zaparoo_core() is not None:  # the profile keys are the core's values; unreachable: the defaults
            try:
                core = await env.proxy("settings", None)
                out.update({k: core[k] for k in PROFILE_SETTINGS if isinstance(core, dict) and k in core})
            except RpcError:
                pass
        return out

    async def _profile_settings(params: dict[str, Any]) -> None:
        """settings.update's profile keys: checked, then sent to the core (an error without one)."""
        given = {k: params.pop(k) for k in list(params) if k in PROFILE_SETTINGS}
        if not given:
            return
        if bad := [k for k, v in given.items() if not isinstance(v, PROFILE_SETTINGS[k])]:
            raise RpcError(f"invalid params: {bad[0]}: must be true or false")
        if env.zaparoo_core() is None:
            raise RpcError(f"no Zaparoo Core configured: {next(iter(given))} is a profile setting, and profiles "
                           "are Zaparoo Core's")
        await env.proxy("settings.update", given)

    @rpc.method("settings.update")
    async def settings_update(params: Any) -> Any:
        if not isinstance(params, dict):
            raise RpcError("invalid params: expected an object of settings")
        # Keys neither the document nor Core knows are refused; Core-only ones are ignored (CORE_ONLY_SETTINGS).
        # Then types, for every key the document lists. The fixed one (systemDefaults) goes on to the config,
        # which accepts it at the value tagd reports; profile keys go to the core.
        unknown = [k for k in params if k not in SettingsParams.model_fields and k not in CORE_ONLY_SETTINGS
                   and k not in PROFILE_SETTINGS]
        if unknown:
            raise RpcError(f"invalid params: {unknown[0][:60]}: not a setting")
        if "encryption" in params and not CALLER.get().local:  # as Core: the policy is changed at the device only
            raise RpcError("encryption setting: method is only available from localhost")
        params = dict(params)
        await _profile_settings(params)
        p = params_of(SettingsParams, params)
        if not p.model_fields_set:
            return {}  # {} (or only Core-only keys): nothing to change, nothing to write
        params = {k: v for k, v in p.model_dump(mode="json").items() if k in p.model_fields_set}
        try:
            await env.update_settings(params)
        except ConfigError as exc:  # a bad value in the params, or a config file that cannot be written safely
            raise RpcError(f"invalid params: {exc.key}: {exc.reason}" if exc.file.startswith("<") else str(exc)) from None
        return {}
