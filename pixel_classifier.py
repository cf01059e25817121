"""Top-level launcher for the frozen app (PyInstaller entry point; see build.spec).

``desktop/__main__.py`` uses relative imports, so it cannot be the frozen entry script itself;
this file imports it as part of the ``desktop`` package and runs its ``main()``.
"""
import multiprocessing
import sys

if __name__ == "__main__":
    # Training runs in a spawned child process (training/isolated.py); in the frozen app that
    # child is this executable again, and freeze_support() turns it into the child, not a window.
    multiprocessing.freeze_support()
    from desktop.__main__ import main
    sys.exit(main())
