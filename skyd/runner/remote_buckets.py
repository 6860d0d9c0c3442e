"""Bucket mounts on a remote machine (a cloud VM or a lab host), with rclone as the one tool:
`rclone mount` (FUSE) for MOUNT / MOUNT_CACHED where FUSE works, else `rclone copy` before
setup and back after run; `rclone copy` for COPY. Shipped over SFTP beside remote_shim.py and
run by it, so stdlib only, for any python3 >= 3.6:

    python3 remote_buckets.py fetch DIR    before setup: install rclone if missing, mount or
                                           copy each bucket of DIR/launch.json; writes
                                           DIR/mounts.json (per destination: how) for `show`
    python3 remote_buckets.py finish DIR   after run: write fallback copies back, unmount,
                                           purge the non-persistent buckets skyd created
    python3 remote_buckets.py stopped DIR  a killed job (moved, cancelled): as finish, but
                                           no bucket is purged (a moved job still needs it)
    python3 remote_buckets.py unmount DIR  a job killed before its buckets were all in
                                           place: unmount only (nothing is written back)

The mounts run in sessions of their own: the SIGTERM a kill sends the job's process group
does not reach them, and `finish` unmounts them after the job has stopped, once their
pending uploads are flushed.

Both append to DIR/bucket-transfers.json the bytes each `rclone copy` moved, per bucket and
direction ("in": read from it, "out": written back), from rclone's own final stats (its JSON
log); the daemon charges them as data transfer. A FUSE mount is listed with bytes null when
it is made; `finish` adds what the mount read and wrote, from its remote-control server
(skyd.runner.fuse_meter: rclone 1.60 prints no totals when a mount exits).

Each bucket is an rclone remote configured only through environment variables
(RCLONE_CONFIG_SKYD<i>_*), filled from the job's own credentials (the same variables as
skyd.runner.stores reads on a local host); nothing is written to an rclone config file.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from typing import Any, TextIO

try:  # shipped beside this file to the node; the package's copy in tests
    import fuse_meter  # type: ignore[import-not-found,unused-ignore]
except ImportError:
    from skyd.runner import fuse_meter

FUSE_MODES = ("MOUNT", "MOUNT_CACHED")
# rclone's VFS cache: MOUNT writes through a write cache (what rclone needs for writes that
# are not sequential); MOUNT_CACHED caches reads and writes and uploads in the background
VFS_CACHE = {"MOUNT": "writes", "MOUNT_CACHED": "full"}
MOUNT_WAIT_S = 15.0
UPLOAD_WAIT_S = 1800.0  # after unmounting, for rclone to finish the uploads in flight
PIDS = "rclone-pids.json"
RC = "rclone-rc.json"  # each mount's remote-control address and login (owner-only file)
TRANSFERS = "bucket-transfers.json"  # bytes each copy moved, for the daemon to charge
# rclone logs JSON lines (turned back into text for the job's log) and, at NOTICE level so
# they show, its stats: the last ones, as it exits, count the bytes the copy transferred
METERED = ["--use-json-log", "--stats-log-level", "NOTICE"]
# the mounts this process started (fetch and finish in one process: tests), so they are waited
# for as children rather than left as zombies
_STARTED: dict[int, subprocess.Popen[bytes]] = {}


def remote_name(index: int) -> str:
    return f"skyd{index}"


def connection_parts(text: str) -> dict[str, str]:
    """An Azure connection string's `Key=Value;…` parts (skyd.runner.azure_rclone reads it too)."""
    parts: dict[str, str] = {}
    for item in text.split(";"):
        key, sep, value = item.partition("=")
        if sep:
            parts[key.strip()] = value.strip()
    return parts


def rclone_env(mount: dict[str, Any], index: int, env: dict[str, str]) -> dict[str, str]:
    """RCLONE_CONFIG_SKYD<i>_* for one bucket, from the job's credentials."""
    prefix = f"RCLONE_CONFIG_{remote_name(index).upper()}_"
    store = mount.get("store", "s3")
    conf: dict[str, str] = {}
    if store in ("s3", "r2"):
        conf["TYPE"] = "s3"
        if store == "r2":
            conf["PROVIDER"] = "Cloudflare"
            account = env.get("CLOUDFLARE_ACCOUNT_ID", "")
            conf["ENDPOINT"] = env.get("R2_ENDPOINT_URL") or (
                f"https://{account}.r2.cloudflarestorage.com" if account else ""
            )
            key = env.get("R2_ACCESS_KEY_ID") or env.get("AWS_ACCESS_KEY_ID", "")
            secret = env.get("R2_SECRET_ACCESS_KEY") or env.get("AWS_SECRET_ACCESS_KEY", "")
        else:
            endpoint = mount.get("endpoint_url") or env.get("AWS_ENDPOINT_URL", "")
            conf["PROVIDER"] = "Other" if endpoint else "AWS"
            if endpoint:
                conf["ENDPOINT"] = endpoint
            key = env.get("AWS_ACCESS_KEY_ID", "")
            secret = env.get("AWS_SECRET_ACCESS_KEY", "")
            if env.get("AWS_SESSION_TOKEN"):
                conf["SESSION_TOKEN"] = env["AWS_SESSION_TOKEN"]
            region = env.get("AWS_DEFAULT_REGION") or env.get("AWS_REGION")
            conf["REGION"] = region or "us-east-1"
        if key and secret:
            conf.update(ACCESS_KEY_ID=key, SECRET_ACCESS_KEY=secret)
        elif store == "s3":
            conf["ENV_AUTH"] = "true"  # an instance profile, or a public bucket
        conf["NO_CHECK_BUCKET"] = "true"  # the bucket exists: skyd created it or it was named
    elif store == "gcs":
        conf["TYPE"] = "google cloud storage"
        emulator = env.get("STORAGE_EMULATOR_HOST")
        if emulator:
            conf.update(ENDPOINT=emulator.rstrip("/") + "/storage/v1/", ANONYMOUS="true")
        elif env.get("GOOGLE_APPLICATION_CREDENTIALS"):
            conf["SERVICE_ACCOUNT_FILE"] = env["GOOGLE_APPLICATION_CREDENTIALS"]
        else:
            conf["ENV_AUTH"] = "true"  # the VM's service account
        if env.get("GOOGLE_CLOUD_PROJECT"):
            conf["PROJECT_NUMBER"] = env["GOOGLE_CLOUD_PROJECT"]
        conf["BUCKET_POLICY_ONLY"] = "true"
    elif store == "azure":
        conf["TYPE"] = "azureblob"
        parts = connection_parts(env.get("AZURE_STORAGE_CONNECTION_STRING", ""))
        conf["ACCOUNT"] = parts.get("AccountName") or mount.get("account") or ""
        key = parts.get("AccountKey") or env.get("AZURE_STORAGE_KEY", "")
        # a host-style endpoint of another Azure cloud: rclone puts the account before it
        endpoint = parts.get("BlobEndpoint", "").rstrip("/")
        suffix = endpoint.split("://", 1)[-1].partition(".")[2]
        if endpoint.startswith("https://" + conf["ACCOUNT"] + ".") and "/" not in suffix:
            conf["ENDPOINT"] = suffix
        if mount.get("sas_url"):
            # made by the daemon (skyd.runner.azure_rclone) for a path-style endpoint
            conf = {"TYPE": "azureblob", "SAS_URL": mount["sas_url"]}
        elif key:
            conf["KEY"] = key
        elif env.get("AZURE_STORAGE_SAS_URL"):
            conf["SAS_URL"] = env["AZURE_STORAGE_SAS_URL"]
        else:
            conf["USE_MSI"] = "true"  # the VM's managed identity
    return {prefix + k: v for k, v in conf.items()}


def remote_path(mount: dict[str, Any], index: int) -> str:
    path = "/".join(p for p in (mount["bucket"], mount.get("prefix", "").strip("/")) if p)
    return f"{remote_name(index)}:{path}"


def ca_flags(env: dict[str, str]) -> list[str]:
    """rclone does not read AWS_CA_BUNDLE (its S3 client refuses it outright): pass it on."""
    bundle = env.get("AWS_CA_BUNDLE")
    return ["--ca-cert", bundle] if bundle else []


def mount_argv(mount: dict[str, Any], index: int, env: dict[str, str]) -> list[str]:
    """`rclone mount` of one bucket at its target. Run in the foreground of a child that
    outlives this script (not --daemon), so `finish` can wait for it to exit: rclone finishes
    the uploads in progress before it exits, but drops those still waiting for their
    write-back delay, hence --vfs-write-back 0s (upload as soon as a file is closed)."""
    mode = mount.get("mode", "MOUNT")
    argv = ["rclone", "mount", remote_path(mount, index), mount["target"]]
    argv += ["--vfs-cache-mode", VFS_CACHE.get(mode, "writes"), "--vfs-write-back", "0s"]
    argv += ["--dir-cache-time", "10s"]  # see other nodes' writes soon
    return argv + ca_flags(env)


def copy_argv(
    mount: dict[str, Any], index: int, env: dict[str, str], *, back: bool = False, one: bool = False
) -> list[str]:
    """`rclone copy` down (before setup) or, with `back`, up (after run). A mount of one
    object (`s3://b/file.bin`, `one`) is `copyto`: the target is that file, not a folder."""
    source, target = remote_path(mount, index), mount["target"]
    pair = [target, source] if back else [source, target]
    return ["rclone", "copyto" if one else "copy", *pair, *ca_flags(env)]


def _is_object(
    mount: dict[str, Any], index: int, env: dict[str, str], tool_env: dict[str, str]
) -> bool:
    """Whether the mount names one object rather than a folder (as skyd.runner.buckets)."""
    if not mount.get("prefix"):
        return False
    argv = ["rclone", "lsjson", "--stat", remote_path(mount, index), *ca_flags(env)]
    done = subprocess.run(argv, env=tool_env, capture_output=True, text=True)
    try:
        return done.returncode == 0 and not json.loads(done.stdout).get("IsDir", True)
    except ValueError:
        return False


def fuse_problem() -> str:
    """Why a FUSE mount cannot work here ("" = it may)."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse on this machine"
    if not os.access("/dev/fuse", os.R_OK | os.W_OK):
        return "/dev/fuse is not usable by this login"
    if not (shutil.which("fusermount3") or shutil.which("fusermount")):
        return "no fusermount (fuse3) installed"
    return ""


def install_rclone(log: TextIO) -> str:
    """rclone from the distribution's packages if missing; '' on success, else why not."""
    if shutil.which("rclone"):
        return ""
    sudo: list[str] = [] if os.geteuid() == 0 else ["sudo", "-n"]
    for argv in (
        [*sudo, "apt-get", "install", "-y", "-qq", "rclone", "fuse3"],
        [*sudo, "dnf", "install", "-y", "-q", "rclone", "fuse3"],
    ):
        if shutil.which(argv[len(sudo)]) is None:
            continue
        log.write("--- skyd: installing rclone: " + " ".join(argv) + " ---\n")
        log.flush()
        subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, check=False)
        if shutil.which("rclone"):
            return ""
    return "rclone is not installed and could not be installed (apt-get/dnf with sudo -n)"


def _run(argv: list[str], env: dict[str, str], log: TextIO) -> int:
    log.flush()
    return subprocess.run(argv, env=env, stdout=log, stderr=subprocess.STDOUT).returncode


def _copy(argv: list[str], env: dict[str, str], log: TextIO) -> tuple[int, int | None]:
    """Run an rclone copy; its log goes to the job's log as text. Returns its exit code and
    the bytes it transferred (rclone's final stats; None if it printed none)."""
    log.flush()
    moved = None
    with subprocess.Popen(
        argv + METERED, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    ) as proc:
        assert proc.stdout is not None
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace")
            entry = fuse_meter.json_entry(line)
            if entry is None:
                log.write(line)  # printed before rclone's logging was set up
                continue
            stats = entry.get("stats")
            if isinstance(stats, dict) and isinstance(stats.get("bytes"), int):
                moved = stats["bytes"]
            level, text = entry.get("level", "info"), str(entry.get("msg", "")).strip()
            log.write(f"rclone {level}: {text}\n")
    return proc.returncode, moved


def _record(attempt_dir: str, mount: dict[str, Any], direction: str, nbytes: int | None) -> None:
    """Add one bucket's traffic to TRANSFERS (replaced whole, never seen half-written)."""
    path = os.path.join(attempt_dir, TRANSFERS)
    entries: list[dict[str, Any]] = []
    with contextlib.suppress(OSError, ValueError), open(path) as fh:
        entries = list(json.load(fh))
    entries.append(
        {
            "dest": mount.get("dest", mount["target"]),
            "url": mount["url"],
            "store": mount.get("store", "s3"),
            "direction": direction,
            "bytes": nbytes,
        }
    )
    with open(path + ".tmp", "w") as fh:
        json.dump(entries, fh)
    os.replace(path + ".tmp", path)


def _wait_mounted(target: str, proc: subprocess.Popen[bytes]) -> bool:
    deadline = time.time() + MOUNT_WAIT_S
    while time.time() < deadline and proc.poll() is None:
        if os.path.ismount(target):
            return True
        time.sleep(0.1)  # rclone mounts a moment after it starts
    return False


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rpartition(")")[2].split()[0] != "Z"  # a zombie has exited
    except (OSError, IndexError):
        return False


def _wait_gone(pid: int, timeout: float) -> bool:
    if pid in _STARTED:
        try:
            _STARTED.pop(pid).wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    deadline = time.time() + timeout
    while time.time() < deadline:
        if not _alive(pid):
            return True
        time.sleep(0.2)  # rclone uploads what is in flight, then exits
    return False


def make_dir(path: str, log: TextIO) -> None:
    """mkdir -p, with sudo for a path outside the login's reach (/data on a cloud image),
    then owned by the login, as SkyPilot prepares mount points."""
    try:
        os.makedirs(path, exist_ok=True)
        return
    except PermissionError:
        if os.geteuid() == 0 or not shutil.which("sudo"):
            raise
    owner = f"{os.getuid()}:{os.getgid()}"
    for argv in (["sudo", "-n", "mkdir", "-p", path], ["sudo", "-n", "chown", owner, path]):
        if _run(argv, dict(os.environ), log) != 0:
            raise PermissionError(f"cannot create {path} (not even with sudo -n)")


def _tool_env(mounts: list[dict[str, Any]], env: dict[str, str]) -> dict[str, str]:
    tool_env = dict(env)
    tool_env.pop("AWS_CA_BUNDLE", None)  # handed to rclone as --ca-cert instead
    for index, mount in enumerate(mounts):
        tool_env.update(rclone_env(mount, index, env))
    return tool_env


def fetch(mounts: list[dict[str, Any]], env: dict[str, str], attempt_dir: str, log: TextIO) -> int:
    """Mount or copy every bucket; 0 when all are in place."""
    problem = install_rclone(log)
    if problem:
        log.write(f"--- skyd: {problem} ---\n")
        return 1
    fuse = fuse_problem()
    tool_env = _tool_env(mounts, env)
    report: dict[str, str] = {}
    pids: dict[str, int] = {}
    rcs: dict[str, dict[str, Any]] = {}
    for index, mount in enumerate(mounts):
        target, url = mount["target"], mount["url"]
        how = ""
        if mount.get("mode") in FUSE_MODES and not fuse:
            make_dir(target, log)
            argv = mount_argv(mount, index, env)
            # its remote-control server on loopback, its login in its environment (readable
            # by this login only), for finish to ask what it moved; its log in a file of its
            # own, the uploads it names tell its writes from its reads
            port = fuse_meter.free_port()
            password = secrets.token_hex(16)
            login: dict[str, Any] = {"port": port, "user": "skyd", "pass": password}
            mount_env = dict(tool_env, RCLONE_RC_USER="skyd", RCLONE_RC_PASS=password)
            log_path = fuse_meter.log_path(attempt_dir, index)
            log.flush()
            with open(log_path, "ab") as mount_log:
                # not in the shim's process group: a kill's SIGTERM would stop the mount
                # before the job's last writes are flushed; finish (or unmount) stops it
                proc = subprocess.Popen(
                    argv + fuse_meter.rc_flags(port), env=mount_env, stdout=mount_log,
                    stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
            if _wait_mounted(target, proc):
                how = f"FUSE mount (rclone mount, --vfs-cache-mode {argv[5]})"
                pids[target] = proc.pid
                rcs[target] = login
                _STARTED[proc.pid] = proc
                _record(attempt_dir, mount, "in", None)  # metered by finish
                _save_mounts(attempt_dir, pids, rcs)  # a fetch killed now still unmounts it
            else:
                proc.kill()
                proc.wait()
                fuse_meter.relay_log(log_path, log)
                fuse = "rclone mount failed (see the log above)"
        if not how:
            one = _is_object(mount, index, env, tool_env)
            make_dir(os.path.dirname(target) if one else target, log)
            code, moved = _copy(copy_argv(mount, index, env, one=one), tool_env, log)
            _record(attempt_dir, mount, "in", moved)  # a failed copy's bytes crossed too
            if code != 0:
                log.write(f"--- skyd: could not copy {url} to {target} ---\n")
                return 1
            how = "copied before setup"
            if mount.get("mode") in FUSE_MODES:
                how += f" (no FUSE: {fuse}); written back when the job ends"
        report[mount.get("dest", target)] = how
        log.write(f"--- skyd: {url} → {target}: {how} ---\n")
    with open(os.path.join(attempt_dir, "mounts.json"), "w") as fh:
        json.dump(report, fh)
    _save_mounts(attempt_dir, pids, rcs)
    return 0


def _save_mounts(attempt_dir: str, pids: dict[str, int], rcs: dict[str, dict[str, Any]]) -> None:
    with open(os.path.join(attempt_dir, PIDS), "w") as fh:
        json.dump(pids, fh)
    rc_path = os.path.join(attempt_dir, RC)
    with open(os.open(rc_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as fh:
        json.dump(rcs, fh)


def finish(
    mounts: list[dict[str, Any]],
    env: dict[str, str],
    attempt_dir: str,
    log: TextIO,
    *,
    write_back: bool = True,
    purge: bool = True,
) -> int:
    """Write fallback copies back, unmount FUSE mounts, purge ephemeral buckets (with
    `purge`: the job is over); without `write_back` (a fetch cut short: its copies are
    partial) only unmount."""
    tool_env = _tool_env(mounts, env)
    failed = 0
    pids: dict[str, int] = {}
    rcs: dict[str, dict[str, Any]] = {}
    with contextlib.suppress(OSError, ValueError), open(os.path.join(attempt_dir, PIDS)) as fh:
        pids = json.load(fh)
    with contextlib.suppress(OSError, ValueError), open(os.path.join(attempt_dir, RC)) as fh:
        rcs = json.load(fh)
    for index, mount in enumerate(mounts):
        target = mount["target"]
        if os.path.ismount(target):
            stats = None
            if target in rcs:  # before unmounting: the server goes with the mount
                stats = fuse_meter.final_stats(rcs[target], UPLOAD_WAIT_S)
            unmount = shutil.which("fusermount3") or shutil.which("fusermount") or "fusermount"
            failed |= _run([unmount, "-u", target], tool_env, log)
            pid = pids.get(target)
            if pid and not _wait_gone(pid, UPLOAD_WAIT_S):
                log.write(f"--- skyd: rclone still uploading to {mount['url']}; left running ---\n")
                failed = 1
            if target in rcs:
                uploads = fuse_meter.relay_log(fuse_meter.log_path(attempt_dir, index), log)
                moved = fuse_meter.split(stats, uploads)
                if moved is None:
                    log.write(f"--- skyd: {fuse_meter.unmetered(stats)} ---\n")
                else:
                    _record(attempt_dir, mount, "in", moved[0])
                    _record(attempt_dir, mount, "out", moved[1])
        elif not write_back:
            pass
        elif mount.get("mode") in FUSE_MODES and os.path.exists(target):
            log.write(f"--- skyd: writing {target} back to {mount['url']} ---\n")
            back = copy_argv(mount, index, env, back=True, one=os.path.isfile(target))
            code, moved = _copy(back, tool_env, log)
            _record(attempt_dir, mount, "out", moved)
            if code == 0:
                log.write(f"--- skyd: {target} written back to {mount['url']} ---\n")
            else:
                failed = 1
        if purge and mount.get("purge_at_end") and env.get("SKYD_NODE_RANK", "0") == "0":
            bucket = f"{remote_name(index)}:{mount['bucket']}"
            if _run(["rclone", "purge", bucket, *ca_flags(env)], tool_env, log) == 0:
                log.write(f"--- skyd: deleted non-persistent bucket {mount['url']} ---\n")
            else:
                failed = 1
    return failed


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("fetch", "finish", "stopped", "unmount"):
        sys.stderr.write("usage: remote_buckets.py fetch|finish|stopped|unmount DIR\n")
        return 2
    attempt_dir = argv[1]
    with open(os.path.join(attempt_dir, "launch.json")) as fh:
        launch = json.load(fh)
    env = dict(os.environ)
    env.update({str(k): str(v) for k, v in dict(launch.get("env") or {}).items()})
    mounts = list(launch.get("storage_mounts") or [])
    if argv[0] == "fetch":
        return fetch(mounts, env, attempt_dir, sys.stdout)
    back, purge = argv[0] != "unmount", argv[0] == "finish"
    return finish(mounts, env, attempt_dir, sys.stdout, write_back=back, purge=purge)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
