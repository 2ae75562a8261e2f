"""``python -m trio_bidi``: the ``trio-bidi`` command (see `trio_bidi.cli`)."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
