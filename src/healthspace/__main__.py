import sys

from healthspace.cli import main

sys.exit(main())
