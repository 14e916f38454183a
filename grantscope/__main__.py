"""Entry point: ``python -m grantscope`` and the ``grantscope`` console script."""

from grantscope.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
