"""TUI tests: the Pilot helpers are in tests/pilot.py (on sys.path through pytest's pythonpath)."""
