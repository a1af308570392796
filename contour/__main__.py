import sys

from contour.cli import main

sys.exit(main())
