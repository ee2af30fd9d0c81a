"""The Zaparoo App's view of the config: the ``settings`` result and ``settings.update``'s keys.

The App speaks in camelCase keys (``readersScanMode``); the file in Core's TOML keys (``[readers.scan] mode``).
:data:`SETTINGS_KEYS` is the one map between them, used to apply an update here and to edit the file in
:mod:`.writing`. Keys the App may send that tagd only reports are :data:`FIXED_SETTINGS`, with the reason.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from tagd.daemon.config.errors import ConfigError, reason_of


class AppSettings:
    """Mixed into :class:`~tagd.daemon.config.schema.Config` (it is one): ``settings`` and ``settings.update``."""

    if TYPE_CHECKING:  # what it uses of the model it is mixed into (not fields of its own)
        readers: Any
        audio: Any
        service: Any
        debug_logging: bool
        error_reporting: bool
        run_zapscript: bool
        model_dump: Any
        model_validate: Any

    # -- Zaparoo `settings` / `settings.update` keys (the reader and scan part) --

    def settings_json(self) -> dict[str, Any]:
        """Zaparoo's ``settings`` result. The reader and scan keys are tagd's settings; the others, which the
        document requires, say what tagd does: it always forwards ZapScript (the core decides what runs),
        reports no errors anywhere, has no per-system launch defaults, and tells a tap's outcome through the
        ACR122U's buzzer and LED (feedback.py)."""
        scan = self.readers.scan
        guard = scan.launch_guard
        return {
            "runZapScript": self.run_zapscript,
            "debugLogging": self.debug_logging,
            "audioScanFeedback": self.audio.scan_feedback,
            "errorReporting": self.error_reporting,
            "encryption": self.service.encryption,
            "launchGuardEnabled": guard.enabled,
            "launchGuardTimeout": guard.timeout or DEFAULT_GUARD_TIMEOUT,
            "launchGuardDelay": guard.delay,
            "launchGuardRequireConfirm": guard.require_confirm,
            "profilesRequireForLaunch": False,  # profiles are Zaparoo Core's: with a core, its values (methods.py)
            "profilesSwapData": False,
            "systemDefaults": [],
            "readersAutoDetect": self.readers.auto_detect,
            "readersScanMode": scan.mode,
            "readersScanExitDelay": scan.exit_delay,
            "readersScanIgnoreSystems": list(scan.ignore_system),
            "readersConnect": [
                {"driver": c.driver, "path": c.path, "idSource": c.id_source, "enabled": c.enabled}
                for c in self.readers.connect
            ],
        }

    def driver_options(self) -> dict[str, dict[str, Any]]:
        """The readers' options with ``[audio] scan_feedback`` (the App's audioScanFeedback) as the ACR122U's
        buzzer, unless ``[readers.options.<driver>] buzzer`` is set: the per-driver key is the more specific.
        The daemon shows each tap's outcome on these readers (``feedback``, which turns off the firmware's own
        beep on detection), unless ``[readers.options.<driver>] feedback = false``."""
        options = {driver: dict(values) for driver, values in self.readers.options.items()}
        for driver in FEEDBACK_DRIVERS:
            options.setdefault(driver, {}).setdefault("buzzer", self.audio.scan_feedback)
            options[driver].setdefault("feedback", True)
        return options

    def with_settings(self, update: dict[str, Any], file: str = "<settings.update>") -> Any:
        """A copy with Zaparoo ``settings.update`` keys applied; ConfigError (key = the param name) if invalid.

        Unknown keys are not handled here: the caller decides which of Zaparoo's other keys it accepts."""
        raw = self.model_dump(mode="python")
        readers = raw["readers"]
        for key, value in update.items():
            if key in SETTINGS_KEYS and key != "readersConnect":
                *parents, leaf = SETTINGS_KEYS[key]
                table = raw
                for name in parents:
                    table = table[name]
                table[leaf] = value
            elif key == "readersConnect":
                if not isinstance(value, list) or not all(isinstance(c, dict) for c in value):
                    raise ConfigError(file, key, "must be a list of {driver, path, idSource?, enabled?}")
                readers["connect"] = [
                    {"driver": c.get("driver"), "path": c.get("path", ""), "id_source": c.get("idSource", ""),
                     "enabled": c.get("enabled", True)}
                    for c in value
                ]
            elif key in FIXED_SETTINGS:
                if value != self.settings_json()[key]:
                    raise ConfigError(file, key, FIXED_SETTINGS[key])
            else:
                raise ConfigError(file, key, "not a setting tagd knows")
        try:
            return type(self).model_validate(raw)
        except ValidationError as exc:
            err = exc.errors()[0]
            key = next((k for k in update if _param_matches(k, err["loc"])), "/".join(map(str, err["loc"])))
            raise ConfigError(file, key, reason_of(err)) from None


# where each settings.update key lives in the file
SETTINGS_KEYS = {
    "readersAutoDetect": ("readers", "auto_detect"),
    "readersScanMode": ("readers", "scan", "mode"),
    "readersScanExitDelay": ("readers", "scan", "exit_delay"),
    "readersScanIgnoreSystems": ("readers", "scan", "ignore_system"),
    "readersConnect": ("readers", "connect"),
    "runZapScript": ("run_zapscript",),
    "debugLogging": ("debug_logging",),
    "audioScanFeedback": ("audio", "scan_feedback"),
    "errorReporting": ("error_reporting",),
    "encryption": ("service", "encryption"),  # settings.update takes it from loopback only (api/methods.py)
    "launchGuardEnabled": ("readers", "scan", "launch_guard", "enabled"),
    "launchGuardTimeout": ("readers", "scan", "launch_guard", "timeout"),
    "launchGuardDelay": ("readers", "scan", "launch_guard", "delay"),
    "launchGuardRequireConfirm": ("readers", "scan", "launch_guard", "require_confirm"),
}
FEEDBACK_DRIVERS = ("acr122", "pcsc", "acr122pcsc")  # the drivers whose buzzer [audio] scan_feedback sets
DEFAULT_GUARD_TIMEOUT = 15.0  # seconds, Core's default when launch_guard.timeout is 0


FIXED_SETTINGS = {  # Zaparoo settings tagd reports but does not change over the API, and why
    "systemDefaults": "tagd does not launch media itself: set system defaults on the core",
}


def _param_matches(param: str, loc: tuple[Any, ...]) -> bool:
    path = SETTINGS_KEYS.get(param)
    return path is not None and path[-1] in loc
