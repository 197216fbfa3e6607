"""Allow ``python -m edgecnn``."""

from edgecnn.cli import main

main()
