"""`python -m marginkit` runs the command."""

from marginkit.cli import main

main()
