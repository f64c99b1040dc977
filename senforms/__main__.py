import sys

from senforms.cli import main

sys.exit(main())
