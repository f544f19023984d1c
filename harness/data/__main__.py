import sys

from harness.data.check import main

sys.exit(main())
