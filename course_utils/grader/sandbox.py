"""Kernel launcher that runs untrusted student code in a sandbox (standalone: imports nothing from the course).

The grader runs it by path, as the argv of the kernelspec it writes for each kernel (see `kernel_argv`):

    python -I sandbox.py --workdir DIR --keep PATH ... --memory BYTES -- python -m ipykernel_launcher -f FILE

It creates new mount, PID, IPC and network namespaces (as root, or through a user namespace otherwise);
the network namespace holds only a loopback interface, so student code reaches nothing outside (not the
grading host's 127.0.0.1 either). It builds a fresh root that holds only the system directories, the
Python installation, the paths given with --keep (read-only) and the kernel's working directory
(read-write), pivots into it, mounts a private /proc and a small /tmp, sets resource limits (address
space, file size, CPU time; a process cap when it drops privileges), drops from root to uid `nobody` or
the uid given with --uid (one per kernel, so neighbouring students share no process cap), forbids
regaining privileges (no_new_privs), and executes the kernel. The kernel talks to the grader over ZeroMQ
`ipc` sockets (Unix socket files) in the working directory, which cross the network namespace because both
sides see the same file.
The instructor's files (solutions/, cases/, the gradebook, the rest of the course, /root, /home, /tmp)
do not exist inside. Without namespaces it refuses to run (exit status 3).

Limits hold per sandbox, not per process: with `--cgroup NAME` (as root) the launcher first moves itself into
a memory and a pids cgroup of its own (v1 or v2, below the cgroup it runs in), so every process of the kernel
shares one memory limit (anonymous and shared memory and the sandbox's tmpfs pages alike, swap included) and
one process count. The grader reads the peak back and kills the whole group with `cgroup_release`. The
working folder is a tmpfs of a fixed size and inode count (`quota_mount`, done by the grader before it copies
the release's files in), so a kernel cannot fill the grading host's disk. The launcher dies with its parent
(PR_SET_PDEATHSIG), and the namespace's PID 1 with the launcher, so killing the grader kills every process of
the sandbox. Where cgroups or mounts are not permitted (not root), the per-process limits are what remains.
"""
from __future__ import annotations

import argparse
import ctypes
import fcntl
import json
import os
import resource
import signal
import socket
import struct
import sys
import time

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWPID = 0x00020000, 0x10000000, 0x20000000
CLONE_NEWIPC, CLONE_NEWNET = 0x08000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 1, 2, 4, 32, 4096, 16384, 1 << 18
MNT_DETACH, PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 2, 1, 38
SIOCGIFFLAGS, SIOCSIFFLAGS, IFF_UP = 0x8913, 0x8914, 0x1
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(os.uname().machine)
SYSTEM_DIRS = ["/usr", "/bin", "/sbin", "/lib", "/lib64", "/lib32", "/etc"]
DEVICES = ["null", "zero", "full", "random", "urandom"]
NOBODY = 65534
NPROC = 512                     # processes + threads of the kernel's uid (a fork bomb stops here)
MARKER = ".course-sandbox-workdir"  # the launcher only writes into / hands over a working dir that has it
CONNECTION = ".kernel-connection.json"
ENV_KEEP = ("PATH", "LANG", "LANGUAGE", "TERM", "TZ", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "PYDEVD_DISABLE_FILE_VALIDATION")
MAX_SOCKET_PATH = 100           # a Unix socket path holds at most 107 bytes; leave room for "-<port>"
CGROUP_FS = "/sys/fs/cgroup"
CGROUP_PREFIX = "course-sandbox-"

_libc = ctypes.CDLL(None, use_errno=True)


def _check(ret: int, what: str) -> None:
    """Raise OSError with errno when a libc call failed."""
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(src: str, dst: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    """mount(2)."""
    enc = lambda s: s.encode() if s is not None else None  # noqa: E731
    _check(_libc.mount(enc(src), enc(dst), enc(fstype), ctypes.c_ulong(flags), enc(data)), f"mount {src} -> {dst}")


def _bind(src: str, dst: str, readonly: bool) -> None:
    """Bind-mount src at dst (creating dst), read-only if asked."""
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()
    _mount(src, dst, None, MS_BIND | MS_REC)
    if readonly:
        _mount("none", dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _write(path: str, text: str) -> None:
    """Write a /proc control file."""
    with open(path, "w") as f:
        f.write(text)


def enter_namespaces() -> bool:
    """Unshare mount, PID, IPC and network namespaces (through a user namespace when not root); True on success."""
    flags = CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWIPC | CLONE_NEWNET
    uid, gid = os.getuid(), os.getgid()
    if uid != 0:
        flags |= CLONE_NEWUSER
    if _libc.unshare(flags) != 0:
        return False
    if uid != 0:
        _write("/proc/self/setgroups", "deny")
        _write("/proc/self/uid_map", f"0 {uid} 1")
        _write("/proc/self/gid_map", f"0 {gid} 1")
    loopback_up()
    return True


def loopback_up() -> None:
    """Bring up `lo` in the (new, empty) network namespace: loopback works, nothing else exists."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        req = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, req))[1]
        fcntl.ioctl(s.fileno(), SIOCSIFFLAGS, struct.pack("16sH", b"lo", flags | IFF_UP))


def namespaces_work() -> bool:
    """Probe in a throw-away child: can we unshare and mount here (containers / AppArmor may forbid it)?"""
    pid = os.fork()
    if pid == 0:
        try:
            ok = enter_namespaces()
            if ok:
                _mount("none", "/", None, MS_REC | MS_PRIVATE)
                _mount("tmpfs", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=1m")
            os._exit(0 if ok else 1)
        except BaseException:  # noqa: BLE001 - any failure means no
            os._exit(1)
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0


def build_root(new_root: str, workdir: str, keep: list[str], tmp_mb: int) -> None:
    """Assemble the sandbox's file system under new_root and pivot into it (we are PID 1 of a new namespace)."""
    _mount("none", "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", new_root, "tmpfs", MS_NOSUID | MS_NODEV, "size=64m,mode=755")
    for path, size in (("/tmp", tmp_mb), ("/dev/shm", 16)):
        os.makedirs(new_root + path, exist_ok=True)
        _mount("tmpfs", new_root + path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size}m,mode=1777")
    for src in SYSTEM_DIRS + [sys.base_prefix, sys.prefix] + keep:
        src = os.path.abspath(src)
        if os.path.islink(src):  # e.g. /bin -> usr/bin on merged-/usr systems
            os.makedirs(os.path.dirname(new_root + src), exist_ok=True)
            if not os.path.lexists(new_root + src):
                os.symlink(os.readlink(src), new_root + src)
        elif os.path.exists(src):
            _bind(src, new_root + src, readonly=True)
    _bind(workdir, new_root + workdir, readonly=False)
    os.makedirs(new_root + "/dev", exist_ok=True)
    for dev in DEVICES:
        _bind("/dev/" + dev, new_root + "/dev/" + dev, readonly=False)
    os.makedirs(new_root + "/proc", exist_ok=True)
    _mount("proc", new_root + "/proc", "proc", MS_NOSUID | MS_NODEV)
    os.chdir(new_root)
    if SYS_PIVOT_ROOT is not None and _libc.syscall(SYS_PIVOT_ROOT, b".", b".") == 0:
        _check(_libc.umount2(b".", MNT_DETACH), "umount old root")
    else:  # pragma: no cover - other architectures
        os.chroot(".")
    os.chdir("/")
    _mount("none", "/", None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def apply_limits(memory: int, fsize: int, cpu: int) -> None:
    """Resource limits for the kernel and everything it starts."""
    for res, value in ((resource.RLIMIT_AS, memory), (resource.RLIMIT_FSIZE, fsize),
                       (resource.RLIMIT_CPU, cpu), (resource.RLIMIT_CORE, 0)):
        if value > 0 or res == resource.RLIMIT_CORE:
            resource.setrlimit(res, (value, value))


def drop_privileges(workdir: str, uid: int = NOBODY) -> None:
    """As real root: become `uid` (with a process cap); hand it the working directory itself, never recursively."""
    if os.getuid() == 0 and os.environ.get("COURSE_SANDBOX_KEEP_UID") != "1":
        if dedicated_workdir(workdir):
            os.chown(workdir, uid, uid)
        resource.setrlimit(resource.RLIMIT_NPROC, (NPROC, NPROC))
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
    _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)   # no setuid binary can give privileges back


def clean_environment(home: str = "/tmp") -> None:
    """Only harmless variables reach student code (no tokens, no instructor paths, no parent-pid poller)."""
    keep = {k: v for k, v in os.environ.items() if k in ENV_KEEP or k.startswith(("LC_", "COURSE_"))}
    os.environ.clear()
    os.environ.update(keep, HOME=home, MPLCONFIGDIR=home, TMPDIR=home, IPYTHONDIR=os.path.join(home, ".ipython"))


def dedicated_workdir(workdir: str) -> bool:
    """True only for a folder made for one kernel: it holds the marker file and is not a system folder."""
    path = os.path.realpath(workdir)
    return path.count(os.sep) >= 3 and os.path.isfile(os.path.join(path, MARKER))


# ---------------------------------------------------------------- limits per sandbox (cgroups, disk)

def _own_cgroup(controller: str) -> str | None:
    """This process's cgroup path for a v1 controller ("" for the v2 unified hierarchy), from /proc/self/cgroup."""
    try:
        lines = open("/proc/self/cgroup").read().splitlines()
    except OSError:
        return None
    for line in lines:
        _, names, path = line.split(":", 2)
        if (controller and controller in names.split(",")) or (not controller and names == ""):
            return path
    return None


def cgroup_dirs(name: str) -> list[str]:
    """Where the sandbox NAME's cgroups live: [memory, pids] (v1) or [unified] (v2); [] when neither is usable."""
    v1 = [(c, _own_cgroup(c)) for c in ("memory", "pids")]
    if all(path is not None and os.path.isdir(f"{CGROUP_FS}/{c}{path}") for c, path in v1):
        return [os.path.normpath(f"{CGROUP_FS}/{c}{path}/{CGROUP_PREFIX}{name}") for c, path in v1]
    own = _own_cgroup("")
    if own is not None and os.path.isfile(f"{CGROUP_FS}{own}/cgroup.controllers"):
        return [os.path.normpath(f"{CGROUP_FS}{own}/{CGROUP_PREFIX}{name}")]
    return []


def enter_cgroup(name: str, memory: int, pids: int) -> bool:
    """Make the sandbox's cgroups with their limits and move this process in (children inherit); False if not allowed."""
    dirs = cgroup_dirs(name)
    if not dirs:
        return False
    try:
        if len(dirs) == 1:  # v2: the parent must hand the controllers down
            _write(os.path.dirname(dirs[0]) + "/cgroup.subtree_control", "+memory +pids")
            os.mkdir(dirs[0])
            _write(dirs[0] + "/memory.max", str(memory))
            if os.path.exists(dirs[0] + "/memory.swap.max"):
                _write(dirs[0] + "/memory.swap.max", "0")
            _write(dirs[0] + "/pids.max", str(pids))
        else:
            for d in dirs:
                os.mkdir(d)
            _write(dirs[0] + "/memory.limit_in_bytes", str(memory))
            if os.path.exists(dirs[0] + "/memory.memsw.limit_in_bytes"):
                _write(dirs[0] + "/memory.memsw.limit_in_bytes", str(memory))
            _write(dirs[1] + "/pids.max", str(pids))
        for d in dirs:
            _write(d + "/cgroup.procs", str(os.getpid()))
        return True
    except OSError:
        for d in dirs:
            _rmdir(d)
        return False


def cgroup_peak(name: str) -> int | None:
    """The sandbox's peak memory in bytes (all its processes together), None without a cgroup."""
    for d in cgroup_dirs(name)[:1]:
        for f in ("memory.max_usage_in_bytes", "memory.peak"):
            try:
                return int(open(f"{d}/{f}").read())
            except (OSError, ValueError):
                continue
    return None


def cgroup_release(name: str) -> None:
    """Kill every process left in the sandbox's cgroups and remove them (the grader's side; idempotent)."""
    for d in cgroup_dirs(name):
        if not os.path.isdir(d):
            continue
        if os.path.exists(d + "/cgroup.kill"):
            try:
                _write(d + "/cgroup.kill", "1")
            except OSError:
                pass
        for _ in range(100):
            try:
                left = [int(p) for p in open(d + "/cgroup.procs").read().split()]
            except OSError:
                break
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            time.sleep(0.02)
        _rmdir(d)


def _rmdir(path: str) -> None:
    try:
        os.rmdir(path)
    except OSError:
        pass


def quota_mount(folder: str, size: int, inodes: int) -> bool:
    """Mount a tmpfs of `size` bytes and `inodes` files on folder (as root, on the host); False if not allowed."""
    if os.getuid() != 0:
        return False
    try:
        _mount("tmpfs", folder, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},nr_inodes={inodes},mode=700")
        return True
    except OSError:
        return False


def quota_umount(folder: str) -> None:
    """Detach the tmpfs mounted by quota_mount (its files go with it)."""
    _libc.umount2(folder.encode(), MNT_DETACH)


def _reap_until(child: int) -> int:
    """As PID 1 of the namespace: reap orphans, return the exit status of child."""
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 1
        if pid == child:
            return os.waitstatus_to_exitcode(status)


def kernel_argv(workdir: str, keep: list[str], memory: int, uid: int = NOBODY,
                connection_file: str = "{connection_file}", cgroup: str = "", pids: int = NPROC,
                fsize: int = 256 << 20, tmp_mb: int = 256) -> list[str]:
    """The argv of a sandboxed IPython kernel (the kernelspec's `argv`)."""
    argv = [sys.executable, "-I", os.path.abspath(__file__), "--workdir", workdir, "--memory", str(memory),
            "--uid", str(uid), "--pids", str(pids), "--fsize", str(fsize), "--tmp-mb", str(tmp_mb)]
    if cgroup:
        argv += ["--cgroup", cgroup]
    for path in keep:
        argv += ["--keep", path]
    return argv + ["--", sys.executable, "-m", "ipykernel_launcher", "-f", connection_file]


def socket_prefix(workdir: str) -> str:
    """Where the kernel's ipc sockets go (`<prefix>-<n>`); a clear error when the path is too long for a socket."""
    prefix = os.path.join(os.path.realpath(workdir), ".k")
    if len(prefix.encode()) > MAX_SOCKET_PATH:
        raise ValueError(f"sandbox: {prefix} is too long for a Unix socket ({MAX_SOCKET_PATH} bytes at most); "
                         "set TMPDIR to a short folder such as /tmp")
    return prefix


def main(argv: list[str] | None = None) -> int:
    """Parse the launcher's arguments, build the sandbox and exec the kernel command."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--workdir", required=True)
    p.add_argument("--keep", action="append", default=[])
    p.add_argument("--memory", type=int, required=True, help="bytes of address space (the grader passes its --memory)")
    p.add_argument("--uid", type=int, default=NOBODY, help="the kernel's uid when started as root (default nobody)")
    p.add_argument("--fsize", type=int, default=256 << 20)
    p.add_argument("--cpu", type=int, default=0)
    p.add_argument("--tmp-mb", type=int, default=256)
    p.add_argument("--pids", type=int, default=NPROC, help="processes + threads of the whole sandbox (with --cgroup)")
    p.add_argument("--cgroup", default="", help="put the whole sandbox in cgroups of this name (memory, pids)")
    p.add_argument("command", nargs=argparse.REMAINDER)
    a = p.parse_args(argv)
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)   # the grader gone (killed at its deadline): so is the sandbox
    cmd = a.command[1:] if a.command[:1] == ["--"] else a.command
    workdir = os.path.realpath(a.workdir)
    if not dedicated_workdir(workdir):  # never bind, hand over or write into a folder that is not ours
        print(f"sandbox: {workdir} is not a dedicated working folder (no {MARKER} in it)", file=sys.stderr)
        return 2
    # The connection file lives outside the sandbox: copy it (readable by nobody) into the working dir.
    if "-f" in cmd:
        i = cmd.index("-f") + 1
        with open(cmd[i]) as f:
            info = json.load(f)
        cmd[i] = os.path.join(workdir, CONNECTION)
        with open(cmd[i], "w") as f:
            json.dump(info, f)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the kernel (same process group) handles interrupts
    if a.cgroup and os.getuid() == 0 and not enter_cgroup(a.cgroup, a.memory, a.pids):
        print("sandbox: no cgroup could be made; memory and process limits hold per process only", file=sys.stderr)
    if not (namespaces_work() and enter_namespaces()):
        print("sandbox: cannot create mount / PID / network namespaces here (user namespaces disabled, or a "
              "container without CAP_SYS_ADMIN); grade on a machine or VM that allows them, or as root",
              file=sys.stderr)
        return 3
    pid = os.fork()
    if pid:  # outside the PID namespace: wait for its init and pass on termination
        signal.signal(signal.SIGTERM, lambda *_: os.kill(pid, signal.SIGKILL))
        while True:
            try:
                _, status = os.waitpid(pid, 0)
                return os.waitstatus_to_exitcode(status)
            except InterruptedError:
                continue
    # PID 1 of the new namespace: it dies with the launcher, and all in the namespace die with it.
    _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    try:
        build_root(_new_root_dir(workdir), workdir, a.keep, a.tmp_mb)
    except OSError as e:
        print(f"sandbox: cannot build the sandbox: {e}", file=sys.stderr)
        os._exit(3)
    kernel = os.fork()
    if kernel == 0:
        apply_limits(a.memory, a.fsize, a.cpu)
        drop_privileges(workdir, a.uid)
        os.chdir(workdir)
        clean_environment()
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.execvp(cmd[0], cmd)
    signal.signal(signal.SIGTERM, lambda *_: os.kill(kernel, signal.SIGKILL))
    os._exit(_reap_until(kernel))


def _new_root_dir(workdir: str) -> str:
    """An empty directory to assemble the new root in (next to the dedicated working directory)."""
    path = os.path.join(os.path.dirname(workdir), ".sandbox-root")
    os.makedirs(path, exist_ok=True)
    return path


if __name__ == "__main__":
    sys.exit(main())
