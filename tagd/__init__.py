"""tagd: an NFC reader driver and token daemon.

Tap a tag on a PN532 or ACR122U reader; tagd reads it, decides what it means and
forwards the launch to the core (Zaparoo Core, MQTT, a command).
"""

__version__ = "0.1.0"
