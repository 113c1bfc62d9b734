"""``python -m cato_mq.cli``: how agents and tests start ``cato-mq`` processes."""

import sys

from cato_mq.cli import main

if __name__ == "__main__":  # never when multiprocessing re-imports it in a spawned child
    sys.exit(main())
