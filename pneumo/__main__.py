"""`python -m pneumo ...`: see pneumo.cli.main."""
import sys

from pneumo.cli.main import main

sys.exit(main())
