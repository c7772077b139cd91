"""The ``samdsk`` command: service commands go to ``app.cli``, method commands to
``samdsk.cli`` (which never imports the service)."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    from app.cli import SERVICE_COMMANDS

    if args and args[0] in SERVICE_COMMANDS:
        from app.cli import main as service_main

        return service_main(args)
    from samdsk.cli import main as method_main

    return method_main(args)


if __name__ == "__main__":
    sys.exit(main())
