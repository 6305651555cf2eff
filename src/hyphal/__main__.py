"""`python -m hyphal` runs the command line."""

from hyphal.cli import main

main()
