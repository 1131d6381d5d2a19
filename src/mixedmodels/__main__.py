"""``python -m mixedmodels``: the ``mixedmodels`` command line."""

from .cli import main

raise SystemExit(main())
