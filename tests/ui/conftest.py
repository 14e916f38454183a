"""TUI tests: helpers are in ui_helpers.py (tests/ has no packages: imported by name)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
