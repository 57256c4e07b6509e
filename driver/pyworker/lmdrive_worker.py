"""lmdrive's Python worker: drives one engine reachable only through Python.

lmdrive starts this file as the engine's process (like `lmdrive runner` for
native libraries) and speaks the runner protocol with it: JSON Lines, commands
on stdin, events on stdout (docs/abi.md). Everything else a library prints goes
to stderr, which lmdrive keeps as the engine log. The worker talks only over
these pipes; it opens no port.

This file must stay parseable by old interpreters, so that a too-old Python
gets a clear message instead of a syntax error.
"""
import os
import sys

MIN_PYTHON = (3, 9)


def _too_old():
    msg = "Python %d.%d is too old for lmdrive's worker (%s): it needs %d.%d or later; point --python or LMDRIVE_PYTHON at a newer interpreter" % (
        sys.version_info[0], sys.version_info[1], sys.executable, MIN_PYTHON[0], MIN_PYTHON[1])
    line = '{"ev":"error","phase":"load","error":"%s"}\n' % msg.replace("\\", "\\\\").replace('"', '\\"')
    os.write(1, line.encode("utf-8"))
    sys.exit(1)


def main(extra_engines=None):
    if tuple(sys.version_info[:2]) < MIN_PYTHON:
        _too_old()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from lmdrive_py.protocol import serve_process

    return serve_process(extra_engines or {})


if __name__ == "__main__":
    sys.exit(main())
