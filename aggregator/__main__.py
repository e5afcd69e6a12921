"""``python -m aggregator`` and the ``aggregator`` command.

Ctrl-C while the command is still loading (its first few dozen milliseconds) ends it
with one line, as it does once it runs (``aggregator.cli.entry``), not with Python's
traceback of the import it stopped.
"""

import os
import sys

EXIT_INTERRUPTED = 130  # as aggregator.cli says it (not imported yet when it is needed)


def run() -> None:
    try:
        from aggregator.cli import entry
    except KeyboardInterrupt:
        try:
            sys.stderr.write("error: interrupted\n")
            sys.stderr.flush()
        except (OSError, ValueError, AttributeError):  # no terminal left to say it on
            pass
        os._exit(EXIT_INTERRUPTED)
    entry()


# The guard matters: parser worker processes re-import the main module.
if __name__ == "__main__":
    run()
