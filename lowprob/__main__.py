import sys

from lowprob.cli import main

sys.exit(main())
