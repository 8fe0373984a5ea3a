"""`python -m trainer`: the same as the `stylecam-train` command."""
import sys

from trainer.cli import main

sys.exit(main())
