"""`python -m refute.cli`: the same as the `refute` command."""

from refute.cli.main import main

main()
