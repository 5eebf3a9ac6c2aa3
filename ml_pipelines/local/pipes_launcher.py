"""Run a step's script as `python <script> <args>` would, inside its Dagster Pipes session.

`python pipes_launcher.py <script> [args...]`, started by `CapturingPipesSubprocessClient`:
it opens the Pipes session the step set up, runs the script as `__main__` with the
script's folder first on `sys.path`, and closes the session with the script's outcome.
So every script talks to Dagster (a plain one no longer leaves the step logging "did not
receive any messages"), and a script that calls `open_dagster_pipes()` itself gets this
same session. The exit code and the traceback are the script's.

Started by `procs.start` it leads a process group of its own; a SIGTERM (the step stopping it,
or its death signal when the step process dies) then SIGKILLs that whole group, so what the
script started dies with it. A script that sets its own SIGTERM handler replaces this one.

Run by path with the step env's interpreter: it needs only `dagster_pipes`.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import traceback


def main() -> None:
    from dagster_pipes import open_dagster_pipes

    if os.getpgrp() == os.getpid():
        signal.signal(signal.SIGTERM, lambda *_: os.killpg(0, signal.SIGKILL))
    script = os.path.abspath(sys.argv[1])
    sys.argv = [script, *sys.argv[2:]]
    sys.path[0] = os.path.dirname(script)  # as `python <script>` does
    pipes = open_dagster_pipes()
    try:
        runpy.run_path(script, run_name="__main__")
    except SystemExit:  # sys.exit(...): the code is the script's to give
        pipes.close()
        raise
    except BaseException as exc:  # noqa: BLE001 - reported, then the interpreter's usual exit
        pipes.__exit__(type(exc), exc, exc.__traceback__)
        tb = exc.__traceback__
        while tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename) != script:
            tb = tb.tb_next  # drop this launcher's and runpy's frames
        traceback.print_exception(type(exc), exc, tb or exc.__traceback__)
        sys.exit(1)
    pipes.close()


if __name__ == "__main__":
    main()
