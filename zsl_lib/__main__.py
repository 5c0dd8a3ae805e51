"""`python -m zsl_lib ...`: see zsl_lib.cli."""
from .cli import main

main()
