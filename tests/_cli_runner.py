"""Runs `python -m usbench ARGS` many times cheaply: imports once, then forks one process per case.

Each case is a real process running the real entry point (``runpy`` of ``usbench.__main__``, as
``python -m usbench`` does) with its own cwd, environment, stdout and stderr files and exit status;
only the import time is shared. Protocol: one JSON case per stdin line, one JSON result per stdout
line. A case is ``{"argv", "cwd", "env", "stdout", "stderr"}``; a result is ``{"rc"}``.
"""

from __future__ import annotations

import json
import os
import runpy
import signal
import sys
import traceback


def _preload() -> None:
    # what the commands import lazily, so each forked case pays only for its own work
    import usbench.cli  # noqa: F401
    import usbench.api  # noqa: F401
    import usbench.evaluation  # noqa: F401
    import usbench.runs  # noqa: F401
    import usbench.datasets.inspect  # noqa: F401


def _child(case: dict) -> None:
    os.chdir(case["cwd"])
    os.environ.update(case.get("env", {}))
    for fd, name in ((1, "stdout"), (2, "stderr")):
        f = os.open(case[name], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(f, fd)
        os.close(f)
    sys.stdin = open(os.devnull)
    sys.argv = ["usbench", *case["argv"]]
    signal.alarm(int(case.get("timeout", 60)))  # a case that starts real work instead of refusing ends here
    code = 0
    try:
        runpy.run_module("usbench", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if isinstance(exc.code, str):
            print(exc.code, file=sys.stderr)
    except BaseException:  # what the interpreter would do with an uncaught exception
        traceback.print_exc()
        code = 1
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code)


def main() -> None:
    _preload()
    for line in sys.stdin:
        case = json.loads(line)
        sys.stdout.flush()
        pid = os.fork()
        if pid == 0:
            _child(case)
        _, status = os.waitpid(pid, 0)
        print(json.dumps({"rc": os.waitstatus_to_exitcode(status)}), flush=True)


if __name__ == "__main__":
    main()
