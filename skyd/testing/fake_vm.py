"""Fake clouds' VMs as real machines: one OpenSSH sshd per VM on its own loopback address.

A fake cloud (moto's EC2 behind `MotoEc2`, `FakeGce`, `FakeAzure`) given a `FakeVmHost`
asks it for an address when an instance is created (the address the API then reports as
the instance's public and private IP), boots it when the instance reaches RUNNING, halts it
on stop / preemption and destroys it on terminate. So a test or script can do exactly what
the daemon does against a real cloud:

    host = FakeVmHost(boot_delay_s=2.0)    # root: port 22; otherwise port 2222
    fake = FakeGce(machines=host)           # or FakeAzure(dir, machines=host),
                                            #    MotoEc2(moto, machines=host)
    ... launch through the provider, which delivers the public key the cloud's own way ...
    vm = host.by_address(instance.public_ip)
    vm.wait_up(30)                                 # or host.finish_boot(vm.vm_id): skip the delay
    subprocess.run(vm.ssh_argv(user, key_path, known_hosts) + ["echo hi"])

Each VM gets a fresh ed25519 host key (`vm.host_public_key`, `vm.known_hosts_line()`),
listens only after its boot delay (connections are refused until then, as on a booting
VM), and accepts only the users and public keys its launch delivered (`vm.logins`).

Login users. sshd can only log in accounts that exist, so each login user (`ubuntu`,
`azureuser`, …) is a real local account, created once with `useradd` (root needed) and
shared by every fake VM; what makes VMs separate is the per-VM `AuthorizedKeysFile`
(only that VM's delivered keys), `AllowUsers` (only that VM's users) and a `ForceCommand`
wrapper that gives every session the VM's own home (`vm.home(user)`, under `vm.root`) as
HOME and working directory and marks it with `SKYD_FAKE_VM=<id>@<host>` in its environment
(`vm.marker`: the host part tells apart VMs of one id made by hosts side by side, as in
test processes running at once).
Absolute paths outside the VM's home are the host's own.

Halting a VM (stop, terminate, preemption) SIGKILLs its sshd and every process its
sessions started, found without cgroups: descendants of the sshd, any process whose
environment carries the VM's marker (which survives setsid / double forks), and any
process whose working directory is inside the VM's directory; repeated until none is left.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from skyd.testing.vm_sshd import MARKER, SSHD, wait_listening, write_sshd_config


def write_key_pair(private_path: Path, comment: str = "skyd") -> str:
    """A fresh ed25519 key in OpenSSH format at `private_path` (and `.pub`); returns the
    public line."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    line = f"{public.decode()} {comment}"
    private_path.write_bytes(private)
    private_path.chmod(0o600)
    Path(f"{private_path}.pub").write_text(line + "\n")
    return line


@dataclass
class FakeVm:
    """One fake VM: an address, a disk (`root`), a host key, and an sshd while it is up."""

    vm_id: str
    address: str
    port: int
    root: Path
    host_public_key: str
    boot_delay_s: float
    marker: str  # SKYD_FAKE_VM's value in its sessions: the VM's id and its host's token
    logins: dict[str, list[str]] = field(default_factory=dict)  # user -> public keys
    state: str = "created"  # created | booting | up | down | destroyed
    error: str = ""
    boots: int = 0
    _sshd: subprocess.Popen[bytes] | None = None
    _timer: threading.Timer | None = None
    _up: threading.Event = field(default_factory=threading.Event)

    def home(self, user: str) -> Path:
        return self.root / "home" / user

    def known_hosts_line(self) -> str:
        host = self.address if self.port == 22 else f"[{self.address}]:{self.port}"
        return f"{host} {' '.join(self.host_public_key.split()[:2])}"

    def wait_up(self, timeout: float) -> None:
        """Block until sshd accepts connections (after the boot delay); raise otherwise."""
        if not self._up.wait(timeout):
            raise TimeoutError(f"fake VM {self.vm_id} not up after {timeout}s ({self.state})")
        if self.error:
            raise RuntimeError(f"fake VM {self.vm_id} failed to boot: {self.error}")

    def ssh_argv(self, user: str, key: Path, known_hosts: Path | None = None) -> list[str]:
        """An `ssh` command line for this VM (append the remote command)."""
        checking = (
            ["-o", f"UserKnownHostsFile={known_hosts}", "-o", "StrictHostKeyChecking=yes"]
            if known_hosts is not None
            else [
                "-o",
                "UserKnownHostsFile=/dev/null",
                "-o",
                "StrictHostKeyChecking=no",
                "-o",
                "LogLevel=ERROR",
            ]
        )
        return [
            "ssh",
            "-i",
            str(key),
            "-p",
            str(self.port),
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "ConnectTimeout=5",
            *checking,
            f"{user}@{self.address}",
        ]

    def processes(self) -> list[int]:
        """Pids of the sshd and everything its sessions started (what halting kills)."""
        return sorted(_vm_pids(self))


class FakeVmHost:
    """Allocates loopback addresses and runs one sshd per fake VM (thread-safe)."""

    def __init__(
        self,
        root: Path | None = None,
        *,
        boot_delay_s: float = 0.0,
        port: int | None = None,
        sshd: str = SSHD,
        tools: Mapping[str, str] | None = None,
    ) -> None:
        if not Path(sshd).exists():
            raise FileNotFoundError(
                f"{sshd} not found: fake VMs run a real OpenSSH server; install openssh-server "
                "(.ci/setup.d/10-openssh.sh does it as root)"
            )
        self.root = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="skyd-vms-"))
        # Sessions run as the login users, who must reach their homes inside it.
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)
        self.boot_delay_s = boot_delay_s
        # executables every VM has on its PATH (name -> script text), as an image has its
        # tools installed (e.g. a strict docker stand-in: skyd.testing.fake_docker)
        self.tools = dict(tools or {})
        # A cloud VM's sshd listens on 22; that needs root, and no sshd of this machine's own
        # on 0.0.0.0:22 (which would hold 22 on every loopback address too).
        self._prefix = f"127.{random.randint(16, 250)}.{random.randint(0, 255)}."
        if port is None:
            port = 22 if os.geteuid() == 0 and _bindable(f"{self._prefix}1", 22) else 2222
        self.port = port
        self.sshd = sshd
        self.vms: dict[str, FakeVm] = {}
        self._lock = threading.RLock()
        # (The prefix is a random /24 of 127/8, so concurrent test runs rarely collide.)
        self._next_octet = 2
        self._reserved: set[str] = set()
        # VM ids repeat between hosts (a daemon names its first instance alike in every test),
        # so the processes a halt kills are found by id and this token: halting a VM of one
        # host must not kill the sessions of another host's VM of the same id.
        self._token = secrets.token_hex(6)
        # A test or script that forgets close() still leaves no sshd behind when it exits.
        atexit.register(self.close)

    # -- lifecycle ----------------------------------------------------------------------

    def allocate(self) -> str:
        """Reserve a loopback address before its VM exists (an Azure public IP or NIC)."""
        with self._lock:
            address = self._allocate()
            self._reserved.add(address)
            return address

    def release(self, address: str) -> None:
        """Give back an address from allocate() (its IP resource was deleted)."""
        with self._lock:
            self._reserved.discard(address)

    def create(
        self, vm_id: str, *, address: str | None = None, boot_delay_s: float | None = None
    ) -> FakeVm:
        """Reserve an address (or take `address` from allocate()) and a disk for `vm_id`
        (idempotent); nothing listens yet."""
        with self._lock:
            vm = self.vms.get(vm_id)
            if vm is not None and vm.state != "destroyed":
                return vm
            address = address or self._allocate()
            root = self.root / _safe(vm_id)
            (root / "keys").mkdir(parents=True, exist_ok=True)
            (root / "home").mkdir(exist_ok=True)
            for path in (root, root / "keys", root / "home"):
                path.chmod(0o755)
            if self.tools:
                (root / "bin").mkdir(exist_ok=True)
                (root / "bin").chmod(0o755)
            for name, text in self.tools.items():
                (root / "bin" / name).write_text(text)
                (root / "bin" / name).chmod(0o755)
            host_key = write_key_pair(root / "ssh_host_ed25519_key", f"fake-vm-{_safe(vm_id)}")
            vm = FakeVm(
                vm_id=vm_id,
                address=address,
                port=self.port,
                root=root,
                host_public_key=host_key,
                boot_delay_s=self.boot_delay_s if boot_delay_s is None else boot_delay_s,
                marker=f"{vm_id}@{self._token}",
            )
            self.vms[vm_id] = vm
            return vm

    def boot(self, vm_id: str, logins: Mapping[str, Iterable[str]] | None = None) -> FakeVm:
        """The instance reached RUNNING: sshd starts after the boot delay (idempotent).

        `logins` (user -> public keys) replaces what the VM accepts, as the cloud's agent
        would on boot; None keeps the previous boot's.
        """
        with self._lock:
            vm = self.create(vm_id)
            if logins is not None:
                vm.logins = {
                    u: [k.strip() for k in keys if k.strip()] for u, keys in logins.items()
                }
            if vm.state in ("booting", "up"):
                return vm
            vm.state, vm.error = "booting", ""
            vm._up.clear()
            vm._timer = threading.Timer(vm.boot_delay_s, self._start_sshd, (vm,))
            vm._timer.daemon = True
            vm._timer.start()
            return vm

    def finish_boot(self, vm_id: str) -> FakeVm:
        """Skip what is left of the boot delay and wait until sshd listens."""
        vm = self.vms[vm_id]
        with self._lock:
            timer = vm._timer
            if vm.state == "booting" and timer is not None and timer.is_alive():
                timer.cancel()
                self._start_sshd(vm)
        vm.wait_up(30)
        return vm

    def halt(self, vm_id: str) -> None:
        """Power off: sshd and every process the VM's sessions started are killed."""
        with self._lock:
            vm = self.vms.get(vm_id)
            if vm is None or vm.state in ("down", "destroyed", "created"):
                return
            if vm._timer is not None:
                vm._timer.cancel()
            _kill_all(vm)
            vm.state = "down"
            vm._up.clear()

    def destroy(self, vm_id: str) -> None:
        """Terminated: halted, its disk removed and its address free for reuse."""
        with self._lock:
            vm = self.vms.get(vm_id)
            if vm is None or vm.state == "destroyed":
                return
            self.halt(vm_id)
            vm.state = "destroyed"
            shutil.rmtree(vm.root, ignore_errors=True)

    def close(self) -> None:
        for vm_id in list(self.vms):
            self.destroy(vm_id)
        atexit.unregister(self.close)

    # -- queries ------------------------------------------------------------------------

    def by_address(self, address: str) -> FakeVm:
        for vm in self.vms.values():
            if vm.address == address and vm.state != "destroyed":
                return vm
        raise KeyError(f"no fake VM at {address}")

    def running(self) -> list[FakeVm]:
        """VMs whose sshd is starting or up (what a leak check counts)."""
        return [vm for vm in self.vms.values() if vm.state in ("booting", "up")]

    # -- internals ----------------------------------------------------------------------

    def _allocate(self) -> str:
        taken = {vm.address for vm in self.vms.values() if vm.state != "destroyed"}
        taken |= self._reserved
        for _ in range(250):
            octet, self._next_octet = self._next_octet, self._next_octet % 254 + 1
            address = f"{self._prefix}{octet}"
            if octet > 1 and address not in taken and _bindable(address, self.port):
                return address
        raise RuntimeError(f"no free loopback address for a fake VM in {self._prefix}0/24")

    def _start_sshd(self, vm: FakeVm) -> None:
        with self._lock:
            if vm.state != "booting" or vm._sshd is not None:
                return
            try:
                config = write_sshd_config(
                    self.sshd,
                    vm_id=vm.vm_id,
                    marker=vm.marker,
                    root=vm.root,
                    address=vm.address,
                    port=vm.port,
                    logins=vm.logins,
                )
                log = vm.root / "sshd.log"
                vm._sshd = subprocess.Popen(
                    [self.sshd, "-D", "-f", str(config), "-E", str(log)],
                    stdin=subprocess.DEVNULL,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,
                )
                wait_listening(vm.vm_id, vm.address, vm.port, vm._sshd, log)
            except Exception as exc:
                vm.error = str(exc)
                _kill_all(vm)
            else:
                vm.state = "up"
                vm.boots += 1
            vm._up.set()


def _safe(vm_id: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in vm_id)


def _bindable(address: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


def _proc_table() -> dict[int, tuple[int, str]]:
    """pid -> (ppid, state) of every process."""
    table: dict[int, tuple[int, str]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/{entry.name}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            table[int(entry.name)] = (int(fields[1]), fields[0])
    return table


def _vm_pids(vm: FakeVm) -> set[int]:
    table = _proc_table()
    me = os.getpid()
    marker = f"{MARKER}={vm.marker}".encode()
    prefix = f"{vm.root}/"
    found: set[int] = set()
    if vm._sshd is not None and vm._sshd.pid in table:
        found.add(vm._sshd.pid)
    for pid, (_, state) in table.items():
        if pid == me or state == "Z":
            continue
        with contextlib.suppress(OSError):
            if marker in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0"):
                found.add(pid)
                continue
        with contextlib.suppress(OSError):
            if (os.readlink(f"/proc/{pid}/cwd") + "/").startswith(prefix):
                found.add(pid)
    # Descendants of anything found (children that cleared their environment, say).
    grew = True
    while grew:
        grew = False
        for pid, (ppid, state) in table.items():
            if ppid in found and pid not in found and pid != me and state != "Z":
                found.add(pid)
                grew = True
    return found


def _kill_all(vm: FakeVm) -> None:
    for _ in range(50):
        pids = _vm_pids(vm)
        if not pids:
            break
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        if vm._sshd is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                vm._sshd.wait(timeout=1)
        time.sleep(0.005)  # let the kernel deliver the kills before looking again
    vm._sshd = None
