"""Is a process still there: what runs and file moves use to tell a crashed process's leftovers
from the work of one still running (another window of the app, a training child)."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def process_started(pid: int) -> str:
    """When process ``pid`` started, or "" where that cannot be read: a run's pid that now names
    another process (after a power cut the numbers start again) is then told apart from the app
    that ran it. Linux: this boot's id and the start in clock ticks (/proc); Windows: the
    creation time (GetProcessTimes); macOS: ``ps``'s start time (to the second, in UTC: in local
    time a live process read as another after a change of time zone)."""
    if os.name == "nt":
        return _started_windows(pid)
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        stat = Path(f"/proc/{int(pid)}/stat").read_text()
        return f"{boot}:{stat.rsplit(')', 1)[1].split()[19]}"  # field 22, after the name
    except (OSError, IndexError, ValueError):
        pass
    if sys.platform == "darwin":
        return _started_by_ps(pid)
    return ""


def _started_windows(pid: int) -> str:  # Windows only; tested against a stand-in kernel32
    import ctypes
    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return ""
    try:
        times = [ctypes.c_ulonglong() for _ in range(4)]  # FILETIMEs: creation, exit, cpu x2
        if not kernel32.GetProcessTimes(handle, *(ctypes.byref(t) for t in times)):
            return ""
        return f"created:{times[0].value}"  # 100 ns steps since 1601: unique across boots
    finally:
        kernel32.CloseHandle(handle)


def _started_by_ps(pid: int) -> str:
    import subprocess
    try:
        out = subprocess.run(["ps", "-o", "lstart=", "-p", str(int(pid))], capture_output=True,
                             text=True, timeout=5, env={**os.environ, "LC_ALL": "C", "TZ": "UTC0"})
    except (OSError, subprocess.SubprocessError, ValueError):
        return ""
    started = " ".join(out.stdout.split())
    return f"ps:{started}" if out.returncode == 0 and started else ""


def alive(pid: int) -> bool:
    """Process ``pid`` exists (possibly another process that reuses a dead one's number)."""
    # a number from a file (a run record, a lock): what is no process number names no process
    # (os.kill raises OverflowError beyond a C int, TypeError for text)
    if type(pid) is not int or not 0 < pid < 2**31:
        return False
    if pid == os.getpid():
        return True
    if os.name == "nt":  # os.kill(pid, 0) there sends Ctrl+C; ask Windows instead
        return _alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _alive_windows(pid: int) -> bool:  # Windows only; tested against a stand-in kernel32
    import ctypes
    kernel32 = ctypes.windll.kernel32
    handle = kernel32.OpenProcess(0x00100000 | 0x1000, False, pid)  # SYNCHRONIZE, QUERY_LIMITED
    if not handle:
        return kernel32.GetLastError() == 5  # access denied: it exists, someone else's
    try:
        return kernel32.WaitForSingleObject(handle, 0) == 0x102  # WAIT_TIMEOUT: still running
    finally:
        kernel32.CloseHandle(handle)


def same_process_alive(pid: int, started: str) -> bool:
    """The process that recorded ``pid`` and ``started`` (:func:`process_started`) still runs,
    not another one that now has its number."""
    if not alive(pid):
        return False
    if started and pid != os.getpid():
        now = process_started(pid)
        return not now or now == started
    return True
