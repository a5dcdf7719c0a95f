#!/usr/bin/env python
"""CI entry for the chapters alone: execute every chapter headless into build/executed/.

Prints the table (chapter, status, seconds); on failure names the chapter, the
failing cell and the exception, and exits 1. The logic is fraglife.runner; this
file only gives CI a stable command:  .venv/bin/python ci/run_chapters.py [CHAPTER...]
"""

import sys

from fraglife.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
