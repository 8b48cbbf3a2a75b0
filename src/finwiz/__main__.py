"""``python -m finwiz``: the same command line as the ``finwiz`` script."""

from finwiz.cli import main

raise SystemExit(main())
