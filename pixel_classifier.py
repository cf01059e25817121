"""Top-level launcher for the frozen app (PyInstaller entry point; see build.spec).

``desktop/__main__.py`` uses relative imports, so it cannot be the frozen entry script itself;
this file imports it as part of the ``desktop`` package and runs its ``main()``.
"""
import sys

from desktop.__main__ import main

if __name__ == "__main__":
    sys.exit(main())
