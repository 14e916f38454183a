"""TUI tests: helpers live in ui_helpers.py (tests/ has no packages, so they are imported by name)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
