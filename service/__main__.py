"""`python -m service` is the same as the `service` console script."""

from __future__ import annotations

from service.cli import main

main()
