"""`python -m worker.cli` runs the `tenkaigen` command line."""

from worker.cli import main

main()
