"""``python -m tributary_client …`` (see :mod:`tributary_client.cli`)."""

import sys

from .cli import main

sys.exit(main())
