import sys

from aggregator.cli import main

# The guard matters: parser worker processes re-import the main module.
if __name__ == "__main__":
    sys.exit(main())
