"""The ``ckptconv`` command of the wheel: the Rust CLI, run in process.

``pip install ckptconv`` installs this as the ``ckptconv`` console script; it behaves as
the ``ckptconv`` binary built by cargo (same arguments, output and exit codes).
"""

import signal
import sys


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] == "__h5probe":
        from ckptconv._h5probe import _main

        sys.exit(_main())
    # Signals as the binary has them: Ctrl-C kills a command outright unless it
    # installs its own handler (convert does, to remove its temporary files), instead
    # of Python's KeyboardInterrupt, which the Rust code would not see.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    import ckptconv  # sets up HDF5 isolation

    code = ckptconv._ckptconv.run_cli(["ckptconv", *argv])
    sys.stdout.flush()
    sys.exit(code)


if __name__ == "__main__":
    main()
