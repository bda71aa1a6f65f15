import sys

from usbench.cli import main

sys.exit(main())
