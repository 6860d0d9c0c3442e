"""A strict `docker` / `podman` stand-in for fake VMs: checks the argument grammar, records the
call and runs `exec`'d commands on the host in the container's bind-mounted directory.

No container runs (this machine has no container engine and no registry access). What it
models, and where that comes from:

* The command line as the Docker CLI parses it (github.com/docker/cli, cobra + spf13/pflag):
  options before the image / container name, everything after it is the container's
  command; `--flag value`, `--flag=value`, `-f value`, `-fvalue` and stacked booleans
  (`-it`). An unknown flag, a flag without its argument or a missing IMAGE fails with
  pflag's message, the usage line and `Run 'docker run --help' for more information`
  (docker exits 125, podman prefixes `Error: ` and exits 125 too). The option tables below
  are the real `docker run` / `docker exec` / `docker rm` options (docs.docker.com
  reference, Docker 27), value-taking or boolean as there; real flags skyd never uses are
  accepted and recorded, not acted on.
* The daemon's checks skyd could trip: container names `[a-zA-Z0-9][a-zA-Z0-9_.-]+`, a
  name already in use (Conflict), lowercase image references, bind mounts `SRC:DST[:OPTS]`
  with an absolute DST, `--gpus` values (`all`, a count, `device=…`), `exec` into a
  container that does not exist, `exec -w` with a relative path, `rm` of a running
  container without `-f`.
* Isolation, as far as a stand-in can: an `exec` gets only the image's default environment
  (PATH, HOSTNAME, HOME=/root) plus its `-e` values — nothing of the caller's — and its
  working directory must lie inside a bind mount (a real container sees no other host path).
* Processes and signals as docker has them: an `exec`'d command is not the client's process
  (runc starts it in the container, a session leader there, with a clean signal mask and
  default dispositions); the client waits for it and exits with its code (128+N when
  signal N killed it). The client does not forward signals (moby/moby#9098): a SIGTERM
  kills the client (its default action) and the command runs on. `rm -f` SIGKILLs every
  process of the container (here: each exec'd command's session, told from a reused pid
  by its start time) and removes it.

Each call is appended as one JSON line to LOG (with the fake VM it ran on); containers are
files in STATE. Both paths are written into the copy installed on a VM (`script()`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import secrets
import signal
import sys
import time

LOG = os.environ.get("FAKE_DOCKER_LOG", "/tmp/fake-docker.jsonl")
STATE = os.environ.get("FAKE_DOCKER_STATE", "/tmp/fake-docker-state")

# name -> takes a value; short letters map to long names. Generated from `docker run --help`,
# `docker exec --help` and `docker rm --help` of Docker CLI 28.2.2 (build e6534b4).
# fmt: off
RUN_FLAGS = {
    "add-host": True, "annotation": True, "attach": True, "blkio-weight": True,
    "blkio-weight-device": True, "cap-add": True, "cap-drop": True, "cgroup-parent": True,
    "cgroupns": True, "cidfile": True, "cpu-count": True, "cpu-percent": True,
    "cpu-period": True, "cpu-quota": True, "cpu-rt-period": True, "cpu-rt-runtime": True,
    "cpu-shares": True, "cpus": True, "cpuset-cpus": True, "cpuset-mems": True, "detach": False,
    "detach-keys": True, "device": True, "device-cgroup-rule": True, "device-read-bps": True,
    "device-read-iops": True, "device-write-bps": True, "device-write-iops": True,
    "disable-content-trust": False, "dns": True, "dns-option": True, "dns-search": True,
    "domainname": True, "entrypoint": True, "env": True, "env-file": True, "expose": True,
    "gpus": True, "group-add": True, "health-cmd": True, "health-interval": True,
    "health-retries": True, "health-start-interval": True, "health-start-period": True,
    "health-timeout": True, "hostname": True, "init": False, "interactive": False,
    "io-maxbandwidth": True, "io-maxiops": True, "ip": True, "ip6": True, "ipc": True,
    "isolation": True, "kernel-memory": True, "label": True, "label-file": True, "link": True,
    "link-local-ip": True, "log-driver": True, "log-opt": True, "mac-address": True,
    "memory": True, "memory-reservation": True, "memory-swap": True, "memory-swappiness": True,
    "mount": True, "name": True, "network": True, "network-alias": True,
    "no-healthcheck": False, "oom-kill-disable": False, "oom-score-adj": True, "pid": True,
    "pids-limit": True, "platform": True, "privileged": False, "publish": True,
    "publish-all": False, "pull": True, "quiet": False, "read-only": False, "restart": True,
    "rm": False, "runtime": True, "security-opt": True, "shm-size": True, "sig-proxy": False,
    "stop-signal": True, "stop-timeout": True, "storage-opt": True, "sysctl": True,
    "tmpfs": True, "tty": False, "ulimit": True, "use-api-socket": False, "user": True,
    "userns": True, "uts": True, "volume": True, "volume-driver": True, "volumes-from": True,
    "workdir": True,
}
RUN_SHORT = {
    "a": "attach", "c": "cpu-shares", "d": "detach", "e": "env", "h": "hostname",
    "i": "interactive", "l": "label", "m": "memory", "p": "publish", "P": "publish-all",
    "q": "quiet", "t": "tty", "u": "user", "v": "volume", "w": "workdir",
}
EXEC_FLAGS = {
    "detach": False, "detach-keys": True, "env": True, "env-file": True, "interactive": False,
    "privileged": False, "tty": False, "user": True, "workdir": True,
}
EXEC_SHORT = {
    "d": "detach", "e": "env", "i": "interactive", "t": "tty", "u": "user", "w": "workdir",
}
RM_FLAGS = {
    "force": False, "link": False, "volumes": False,
}
RM_SHORT = {
    "f": "force", "l": "link", "v": "volumes",
}
USAGE = {
    "run": ("[OPTIONS] IMAGE [COMMAND] [ARG...]", "Create and run a new container from an image"),
    "exec": ("[OPTIONS] CONTAINER COMMAND [ARG...]", "Execute a command in a running container"),
    "rm": ("[OPTIONS] CONTAINER [CONTAINER...]", "Remove one or more containers"),
}
MIN_ARGS = {"run": 1, "exec": 2, "rm": 1}
# fmt: on
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_.-]+$")
_IMAGE = re.compile(
    r"^(?:[a-z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
_GPUS = re.compile(r"^(all|[0-9]+|(\"?device=[^\"]+\"?))$")


class CliError(Exception):
    def __init__(self, message: str, code: int = 125) -> None:
        super().__init__(message)
        self.code = code


def _engine() -> str:
    return "podman" if os.path.basename(sys.argv[0]).startswith("podman") else "docker"


def _flag_error(verb: str, message: str) -> CliError:
    engine = _engine()
    if engine == "podman":
        return CliError(f"Error: {message}\nSee 'podman {verb} --help'")
    usage, _ = USAGE[verb]
    return CliError(
        f"{message}\n\nUsage:  docker {verb} {usage}\n\n"
        f"Run 'docker {verb} --help' for more information"
    )


def parse(
    verb: str, args: list[str], flags: dict[str, bool], short: dict[str, str]
) -> tuple[list[tuple[str, str]], list[str]]:
    """pflag with interspersed arguments off: options until the first positional."""
    options: list[tuple[str, str]] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            i += 1
            break
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name not in flags:
                raise _flag_error(verb, f"unknown flag: --{name}")
            if flags[name] and not eq:
                if i + 1 >= len(args):
                    raise _flag_error(verb, f"flag needs an argument: --{name}")
                i += 1
                value = args[i]
            options.append((name, value if eq or flags[name] else "true"))
        elif arg.startswith("-") and len(arg) > 1:
            letters = arg[1:]
            while letters:
                letter, letters = letters[0], letters[1:]
                if letter not in short:
                    raise _flag_error(verb, f"unknown shorthand flag: '{letter}' in -{letter}")
                name = short[letter]
                if flags[name]:
                    value = letters.removeprefix("=")
                    if not value:
                        if i + 1 >= len(args):
                            raise _flag_error(
                                verb, f"flag needs an argument: '{letter}' in -{letter}"
                            )
                        i += 1
                        value = args[i]
                    options.append((name, value))
                    letters = ""
                else:
                    options.append((name, "true"))
        else:
            break
        i += 1
    rest = args[i:]
    if len(rest) < MIN_ARGS[verb]:
        usage, _ = USAGE[verb]
        n = MIN_ARGS[verb]
        plural = "argument" if n == 1 else "arguments"
        if _engine() == "podman":
            raise CliError(f"Error: {verb} requires at least {n} {plural}")
        raise CliError(
            f"docker: 'docker {verb}' requires at least {n} {plural}\n\n"
            f"Usage:  docker {verb} {usage}\n\nSee 'docker {verb} --help' for more information",
            1,
        )
    return options, rest


def _daemon_error(message: str, code: int = 125) -> CliError:
    prefix = "Error: " if _engine() == "podman" else "docker: Error response from daemon: "
    return CliError(prefix + message, code)


def _state_dir() -> str:
    vm = os.environ.get("SKYD_FAKE_VM", "host")
    path = os.path.join(STATE, re.sub(r"[^A-Za-z0-9_.-]", "_", vm))
    os.makedirs(path, exist_ok=True)
    return path


def _container_file(name: str) -> str:
    return os.path.join(_state_dir(), f"{name}.json")


def _load(name: str) -> dict[str, object] | None:
    try:
        with open(_container_file(name)) as fh:
            data: dict[str, object] = json.load(fh)
    except FileNotFoundError:
        return None
    return data


def run(args: list[str]) -> int:
    options, rest = parse("run", args, RUN_FLAGS, RUN_SHORT)
    image = rest[0]
    if not _IMAGE.match(image):
        lower = "must be lowercase" if image != image.lower() else "is not valid"
        raise CliError(
            f"docker: invalid reference format: repository name ({image}) {lower}\n\n"
            "Run 'docker run --help' for more information"
        )
    opts: dict[str, list[str]] = {}
    for name, value in options:
        opts.setdefault(name, []).append(value)
    if "detach" not in opts:
        raise CliError("fake docker: only detached containers (run -d) are modeled", 2)
    name = (opts.get("name") or [""])[-1]
    if not name:
        raise CliError("fake docker: unnamed containers are not modeled; pass --name", 2)
    if not _NAME.match(name):
        raise _daemon_error(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed."
        )
    if _load(name) is not None:
        raise _daemon_error(
            f'Conflict. The container name "/{name}" is already in use by container. '
            "You have to remove (or rename) that container to be able to reuse that name."
        )
    for gpus in opts.get("gpus", []):
        if not _GPUS.match(gpus):
            raise _flag_error(
                "run",
                f'invalid argument "{gpus}" for "--gpus" flag: invalid count ({gpus}): '
                'value must be either "all" or an integer: invalid syntax',
            )
    binds = []
    for spec in opts.get("volume", []):
        parts = spec.split(":")
        if len(parts) not in (2, 3) or not parts[0] or not parts[1]:
            raise _daemon_error(f"invalid volume specification: '{spec}'")
        if not parts[1].startswith("/"):
            raise _daemon_error(
                f'invalid mount config for type "bind": invalid mount path: '
                f"'{parts[1]}' mount path must be absolute"
            )
        binds.append({"source": parts[0], "target": parts[1]})
    record = {
        "name": name,
        "image": image,
        "binds": binds,
        "network": (opts.get("network") or opts.get("net") or ["bridge"])[-1],
        "gpus": opts["gpus"][-1] if "gpus" in opts else None,
        "devices": opts.get("device", []),
        "entrypoint": opts["entrypoint"][-1] if "entrypoint" in opts else None,
        "command": rest[1:],
        "running": True,
    }
    with open(_container_file(name), "w") as fh:
        json.dump(record, fh)
    sys.stdout.write(secrets.token_hex(32) + "\n")
    return 0


def _host_path(container: dict[str, object], path: str) -> str | None:
    """Where a path inside the container is on the host: only through a bind mount."""
    best: tuple[int, str] | None = None
    binds = container["binds"]
    assert isinstance(binds, list)
    for bind in binds:
        target = str(bind["target"]).rstrip("/") or "/"
        inside = path == target or path.startswith(target.rstrip("/") + "/")
        if inside and (best is None or len(target) > best[0]):
            best = (len(target), str(bind["source"]) + path[len(target) :])
    return best[1] if best else None


def exec_(args: list[str]) -> int:
    options, rest = parse("exec", args, EXEC_FLAGS, EXEC_SHORT)
    name, command = rest[0], rest[1:]
    container = _load(name)
    if container is None:
        if _engine() == "podman":
            raise CliError(f'Error: no container with name or ID "{name}" found: no such container')
        raise CliError(f"Error response from daemon: No such container: {name}", 1)
    env = {"PATH": IMAGE_PATH, "HOSTNAME": name[:12], "HOME": "/root"}
    workdir = "/"
    for key, value in options:
        if key == "env":
            var, eq, val = value.partition("=")
            if eq:
                env[var] = val
            elif var in os.environ:
                env[var] = os.environ[var]
        elif key == "workdir":
            workdir = value
    if not workdir.startswith("/"):
        raise CliError(
            f"OCI runtime exec failed: the working directory '{workdir}' is invalid, "
            "it needs to be an absolute path",
            126,
        )
    host_dir = _host_path(container, workdir)
    if host_dir is None or not os.path.isdir(host_dir):
        raise CliError(
            f'OCI runtime exec failed: chdir to cwd ("{workdir}") set in config.json failed: '
            "no such file or directory (fake docker: not inside a bind mount)",
            126,
        )
    pid = os.fork()
    if pid == 0:  # the container's process, as runc starts it
        os.setsid()
        signal.pthread_sigmask(signal.SIG_SETMASK, set())
        for sig in (signal.SIGPIPE, signal.SIGXFSZ, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)  # python's own settings, not the image's
        os.chdir(host_dir)
        try:
            os.execvpe(command[0], command, env)
        except OSError:
            sys.stderr.write(
                f'OCI runtime exec failed: exec: "{command[0]}": executable file not found '
                "in $PATH\n"
            )
            sys.stderr.flush()
        os._exit(127)
    _processes(name, add=pid)
    _, status = os.waitpid(pid, 0)
    _processes(name, drop=pid)
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


def _started(pid: int) -> str | None:
    """The process's start time (field 22 of /proc/PID/stat): tells it from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            raw = fh.read()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()[19]


def _processes(name: str, add: int = 0, drop: int = 0) -> dict[str, str]:
    """The container's exec'd processes (pid -> start time), updated under a lock."""
    path = os.path.join(_state_dir(), f"{name}.procs")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    with open(fd, "r+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        text = fh.read()
        procs: dict[str, str] = json.loads(text) if text else {}
        if add and (started := _started(add)):
            procs[str(add)] = started
        procs.pop(str(drop), None)
        fh.seek(0)
        fh.truncate()
        json.dump(procs, fh)
    return procs


def _kill_all(name: str) -> None:
    for pid, started in _processes(name).items():
        if _started(int(pid)) == started:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(int(pid), signal.SIGKILL)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(os.path.join(_state_dir(), f"{name}.procs"))


def rm(args: list[str]) -> int:
    options, names = parse("rm", args, RM_FLAGS, RM_SHORT)
    force = any(name == "force" for name, _ in options)
    code = 0
    for name in names:
        if _load(name) is None:
            if not force:
                sys.stderr.write(f"Error response from daemon: No such container: {name}\n")
                code = 1
            continue
        if not force:
            sys.stderr.write(
                f"Error response from daemon: You cannot remove a running container {name}. "
                "Stop the container before attempting removal or force remove\n"
            )
            code = 1
            continue
        _kill_all(name)
        os.unlink(_container_file(name))
        sys.stdout.write(name + "\n")
    return code


def _record(argv: list[str]) -> None:
    line = json.dumps({"engine": _engine(), "vm": os.environ.get("SKYD_FAKE_VM"), "argv": argv})
    fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        # shared by every VM's login user (the caller's umask may be 077)
        if os.fstat(fd).st_uid == os.geteuid():
            os.fchmod(fd, 0o666)
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def _slow(argv: list[str]) -> None:
    """FAKE_DOCKER_SLOW=VERB:SECONDS: that verb's client takes so long before it reaches the
    engine, as a loaded machine's docker CLI does (for tests of what a kill does to it)."""
    verb, _, seconds = os.environ.get("FAKE_DOCKER_SLOW", "").partition(":")
    if verb and argv[:1] == [verb]:
        time.sleep(float(seconds))


def main(argv: list[str]) -> int:
    _slow(argv)
    _record(argv)
    verbs = {"run": run, "exec": exec_, "rm": rm}
    if argv[:1] == ["info"]:  # the engine answers: what skyd.runner.engines asks
        sys.stdout.write("28.2.2-fake\n")
        return 0
    if not argv or argv[0] not in (*verbs, "version"):
        what = argv[0] if argv else ""
        sys.stderr.write(
            f"{_engine()}: '{what}' is not a {_engine()} command (fake docker models run, "
            "exec, rm, info, version).\nSee 'docker --help'\n"
        )
        return 1
    if argv[0] == "version":
        sys.stdout.write("fake docker (skyd test stand-in; no container engine)\n")
        return 0
    try:
        return verbs[argv[0]](argv[1:])
    except CliError as exc:
        sys.stderr.write(f"{exc}\n")
        return exc.code


def tools(root: str, engine: str = "docker") -> tuple[dict[str, str], str]:
    """`docker` (or `podman`) for `FakeVmHost(tools=…)`, logging to and keeping containers
    under `root` (made writable by every login user); returns them and the log's path."""
    os.makedirs(os.path.join(root, "state"), exist_ok=True)
    for path in (root, os.path.join(root, "state")):
        os.chmod(path, 0o1777)
    log = os.path.join(root, "calls.jsonl")
    text = script(log, os.path.join(root, "state"))
    return {engine: text}, log


def script(log: str, state: str, python: str = "/usr/bin/python3") -> str:
    """This module as an executable for a VM's PATH, with its log and state paths."""
    with open(__file__) as fh:
        source = fh.read()
    # the first definitions of LOG and STATE (top of the module) take the given paths
    source = re.sub(r"^LOG = .*$", lambda _m: f"LOG = {log!r}", source, count=1, flags=re.M)
    source = re.sub(r"^STATE = .*$", lambda _m: f"STATE = {state!r}", source, count=1, flags=re.M)
    return f"#!{python} -I\n{source}"


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
