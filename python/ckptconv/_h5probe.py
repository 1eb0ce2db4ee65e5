"""The child side of HDF5 isolation: ``python _h5probe.py __h5probe [--emit] FILE``.

ckptconv opens every HDF5 file in a child process first, so that a file that crashes
libhdf5 is reported as corrupt instead of taking the caller's process down. The
``ckptconv`` binary re-executes itself for that; inside Python the child is this script
run by the same interpreter (see docs/python.md).
"""

import sys


def _main() -> int:
    args = sys.argv[1:]
    if len(args) not in (2, 3) or args[0] != "__h5probe":
        return 2
    emit = len(args) == 3 and args[1] == "--emit"
    from ckptconv._ckptconv import h5probe

    sys.stdout.flush()
    return h5probe(args[-1], emit)


if __name__ == "__main__":
    sys.exit(_main())
