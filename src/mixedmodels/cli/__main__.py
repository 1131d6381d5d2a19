"""``python -m mixedmodels.cli``: the same as ``python -m mixedmodels``."""

from . import main

raise SystemExit(main())
