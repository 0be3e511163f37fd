"""`python -m lvd`: the same as the `lvd` command."""

from lvd.cli import main

main()
