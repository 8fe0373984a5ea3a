"""`python -m stylecam`: the same as the `stylecam` command."""
import sys

from stylecam.cli import main

sys.exit(main())
