"""`skyd run` forked from a process that imported it already, for kill -9 chaos tests.

A cold `python -m skyd run` spends seconds importing before it does anything (the Compute
Engine client's generated types alone take 3 s on an idle core and 20 s on a busy one), so
a test that kills and restarts the daemon fifty times would mostly import. A zygote imports
the daemon and the cloud SDKs once, with no thread and nothing of skyd's state, then forks
one child per start. The child is a real daemon process: it parses its arguments, reads its
config, opens the store and its socket and runs its event loop after the fork, exactly as
`python -m skyd run` (`skyd.__main__.main`), and a kill -9 ends it like any other; so a
restart, as in production, knows only what the store and the clouds say.

    daemon = WarmDaemonProcess(root, env=...)   # a DaemonProcess: start, kill9, terminate
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from skyd.testing.daemon import DaemonProcess

# the modules worth having imported before the fork: the daemon and every cloud SDK it loads
PRELOAD = (
    "skyd.__main__",
    "skyd.daemon",
    "skyd.providers.aws.provider",
    "skyd.providers.gcp.provider",
    "skyd.providers.azure.provider",
    "google.cloud.compute_v1",
    "aiobotocore.session",
    "azure.mgmt.compute.aio",
    "azure.mgmt.network.aio",
)

_ZYGOTE = r"""
import importlib, json, os, sys, threading
for name in sys.argv[1:]:
    try:
        importlib.import_module(name)
    except ImportError:
        pass  # an SDK this daemon does not use: the child imports what it needs
assert threading.active_count() == 1, "the zygote must not fork with threads running"
out = sys.stdout
for line in sys.stdin:
    verb, _, arg = line.strip().partition(" ")
    if verb == "start":
        request = json.loads(arg)
        out.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            code = 70
            try:
                log = os.open(request["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                null = os.open(os.devnull, os.O_RDONLY)
                os.dup2(null, 0)
                os.dup2(log, 1)
                os.dup2(log, 2)
                from skyd.__main__ import main
                code = main(request["argv"])
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os._exit(code if isinstance(code, int) else 1)
        print(pid, file=out, flush=True)
    elif verb == "poll":
        pid, status = os.waitpid(int(arg), os.WNOHANG)
        code = None if pid == 0 else os.waitstatus_to_exitcode(status)
        print(json.dumps(code), file=out, flush=True)
"""


class _Zygote:
    """The pre-imported process and its pipe."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _ZYGOTE, *PRELOAD],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            text=True,
        )

    def ask(self, line: str) -> str:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the daemon zygote exited ({self.proc.wait()})")
        return answer.strip()

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(30)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


class _Forked:
    """A forked daemon, with the part of Popen's interface DaemonProcess uses."""

    def __init__(self, zygote: _Zygote, pid: int) -> None:
        self.zygote = zygote
        self.pid = pid
        self.returncode: int | None = None

    def poll(self) -> int | None:
        if self.returncode is None:
            self.returncode = json.loads(self.zygote.ask(f"poll {self.pid}"))
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while (code := self.poll()) is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"skyd run (pid {self.pid})", timeout or 0)
            time.sleep(0.01)  # the child's exit, asked of its parent
        return code

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class WarmDaemonProcess(DaemonProcess):
    """DaemonProcess whose every start is a fork of one warm zygote (see the module doc)."""

    def __init__(self, root: Path, *, env: dict[str, str] | None = None) -> None:
        super().__init__(root, env=env)
        self._zygote: _Zygote | None = None

    def start(self) -> DaemonProcess:
        if self._zygote is None:
            self._zygote = _Zygote(self.env)
        argv = ["run", "--state-dir", str(self.state_dir), "--socket", str(self.socket_path)]
        argv += ["--config", str(self.config)]
        request = json.dumps({"argv": argv, "log": str(self.log_path)})
        pid = int(self._zygote.ask(f"start {request}"))
        self.proc = _Forked(self._zygote, pid)  # type: ignore[assignment]
        return self._await_socket()

    def close(self) -> None:
        super().close()
        if self._zygote is not None:
            self._zygote.close()
            self._zygote = None
