"""Lets `python -m plldb` behave like the `plldb` command."""

from plldb.cli import main

main()
