"""How a fake VM's sshd is set up: login accounts, its keys and config, and the wait to listen."""

from __future__ import annotations

import fcntl
import os
import pwd
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Mapping
from pathlib import Path

SSHD = "/usr/sbin/sshd"
MARKER = "SKYD_FAKE_VM"
_USERS_LOCK = threading.Lock()
_USERS_FILE_LOCK = Path(tempfile.gettempdir()) / "skyd-fake-vm-users.lock"


def ensure_user(name: str) -> None:
    """Create the local account `name` (key login only) unless it exists; needs root."""
    with _USERS_LOCK:
        if _account_exists(name):
            return
        if os.geteuid() != 0:
            raise PermissionError(
                f"fake VM login user {name!r} does not exist on this machine and only root can "
                f"create it; run as root or `useradd -m -p '*' {name}` first"
            )
        # Test processes side by side (pytest-xdist's workers, other checkouts) create the same
        # accounts: one useradd at a time on the machine, or a second one fails on the lock of
        # /etc/passwd while the first is still writing the account it wants.
        with open(_USERS_FILE_LOCK, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if _account_exists(name):
                return
            # '*' (not the default '!') so sshd does not treat the key-only account as locked.
            done = subprocess.run(
                ["useradd", "--create-home", "--shell", "/bin/bash", "--password", "*", name],
                capture_output=True,
                text=True,
                check=False,
            )
        if not _account_exists(name):
            raise RuntimeError(f"useradd {name} failed: {done.stderr.strip()}")


def _account_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
    except KeyError:
        return False
    return True


def write_sshd_config(
    sshd: str,
    *,
    vm_id: str,
    marker: str,
    root: Path,
    address: str,
    port: int,
    logins: Mapping[str, list[str]],
) -> Path:
    """The VM's sshd_config (checked with `sshd -t`): only its users, with only its keys,
    every session in the VM's own home (`ROOT/home/USER`) and marked with MARKER=`marker`."""
    if not logins:
        raise RuntimeError(
            f"fake VM {vm_id}: its launch delivered no login user and public key, so "
            "nobody could ever log in (EC2 KeyName, GCE metadata ssh-keys, Azure osProfile)"
        )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege separation needs it
    keys = root / "keys"
    for stale in keys.iterdir():
        stale.unlink()
    for user, public_keys in logins.items():
        ensure_user(user)
        entry = pwd.getpwnam(user)
        home = root / "home" / user
        home.mkdir(parents=True, exist_ok=True)
        os.chown(home, entry.pw_uid, entry.pw_gid)
        (keys / user).write_text("".join(f"{k}\n" for k in public_keys))
        (keys / user).chmod(0o644)
    shell = root / "vm-shell"
    shell.write_text(
        "#!/bin/sh\n"
        "# ForceCommand of a fake VM: the session's home is the VM's, not the account's.\n"
        f'HOME="{root}/home/$(id -un)"; export HOME\n'
        f"{MARKER}='{marker}'; export {MARKER}\n"
        f'PATH="{root}/bin:$PATH"; export PATH\n'
        'cd "$HOME" || exit 1\n'
        'if [ -n "$SSH_ORIGINAL_COMMAND" ]; then exec /bin/sh -c "$SSH_ORIGINAL_COMMAND"; fi\n'
        "exec /bin/bash -l\n"
    )
    shell.chmod(0o755)
    config = root / "sshd_config"
    config.write_text(
        f"Port {port}\n"
        f"ListenAddress {address}\n"
        f"HostKey {root}/ssh_host_ed25519_key\n"
        f"PidFile {root}/sshd.pid\n"
        f"AuthorizedKeysFile {keys}/%u\n"
        f"AllowUsers {' '.join(sorted(logins))}\n"
        f"ForceCommand {shell}\n"
        f"SetEnv {MARKER}={marker}\n"
        "PubkeyAuthentication yes\n"
        "PasswordAuthentication no\n"
        "KbdInteractiveAuthentication no\n"
        "PermitRootLogin no\n"
        "StrictModes no\n"
        "UsePAM no\n"
        "UseDNS no\n"
        "PrintMotd no\n"
        "X11Forwarding no\n"
        "MaxStartups 64:30:128\n"
        "Subsystem sftp /usr/lib/openssh/sftp-server\n"
    )
    check = subprocess.run(
        [sshd, "-t", "-f", str(config)], capture_output=True, text=True, check=False
    )
    if check.returncode != 0:
        raise RuntimeError(f"sshd rejects the fake VM's config: {check.stderr.strip()}")
    return config


def wait_listening(
    vm_id: str, address: str, port: int, sshd: subprocess.Popen[bytes], log: Path
) -> None:
    """Return once `sshd` accepts connections on address:port; raise if it exits or never does."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if sshd.poll() is not None:
            detail = log.read_text()[-500:] if log.exists() else ""
            raise RuntimeError(f"sshd exited with {sshd.returncode}: {detail}")
        with socket.socket() as probe:
            probe.settimeout(0.5)
            if probe.connect_ex((address, port)) == 0:
                return
        time.sleep(0.01)  # polling a child process's readiness, not ordering a test
    raise RuntimeError(f"sshd for {vm_id} not listening on {address}:{port}")
