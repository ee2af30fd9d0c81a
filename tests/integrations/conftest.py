"""tests/daemon's fake Zaparoo Core is the stand-in Core here too."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "daemon"))
