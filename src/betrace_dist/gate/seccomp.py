"""A seccomp filter for every process of a page: the few system calls the other walls leave open.

The jail's other walls (isolation.py) hold a page to its files, its loopback and its processes.
Three things they do not reach, each found by an attack review:

- a user namespace of its own (`unshare -U`): root inside it, with every capability there, can
  mount file systems and configure its own network, which opens the parts of the kernel most
  local privilege escalations go through;
- the kernel's keyrings (`add_key`, `request_key`, `keyctl`): the user `nobody` has one keyring
  for the whole machine, so a key one page adds is read by the next (a channel between pages
  and runs that outlives the page), and its quota is shared;
- `O_NOATIME`: a page owns its clone's files, so it may read them without stamping their access
  time, and the result cache (result_cache.py) would not count the read.

So `unshare` and `clone` with CLONE_NEWUSER, the three keyring calls, and opening a file with
O_NOATIME (`open`, `openat`, `fcntl(F_SETFL)`) fail with EPERM; `clone3` and `openat2`, whose
flags lie in memory a filter cannot read, fail with ENOSYS, so that glibc falls back to `clone`
and programs to `openat`. bwrap loads the filter (`--seccomp`) right before it runs the page's
command; it holds for everything that command starts.

Written for x86-64, the machine CI runs on: the numbers below are those of the kernel's
`asm/unistd_64.h`, `linux/sched.h`, `asm-generic/fcntl.h` and `linux/audit.h` (a test compares
them with the headers where they are installed). On another architecture no filter is loaded
(`program()` returns None) and the threat model says so. A program of another ABI on x86-64
(32-bit or x32 system calls) is refused every call, since its numbers differ.
"""

from __future__ import annotations

import errno
import platform
import struct

AUDIT_ARCH_X86_64 = 0xC000003E  # EM_X86_64 (62) | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
X32_SYSCALL_BIT = 0x40000000
NR = {
    "open": 2,
    "clone": 56,
    "fcntl": 72,
    "add_key": 248,
    "request_key": 249,
    "keyctl": 250,
    "openat": 257,
    "unshare": 272,
    "clone3": 435,
    "openat2": 437,
}
CLONE_NEWUSER = 0x10000000
O_NOATIME = 0o1000000
F_SETFL = 4

# classic BPF (linux/filter.h, linux/bpf_common.h) and seccomp's return values (linux/seccomp.h)
_LD_W_ABS, _JEQ, _JGE, _JSET, _RET = 0x20, 0x15, 0x35, 0x45, 0x06
RET_ALLOW = 0x7FFF0000
RET_ERRNO = 0x00050000
#: Offsets in struct seccomp_data: nr, arch, then the low 32 bits of each argument.
_NR_AT, _ARCH_AT = 0, 4


def _arg(index: int) -> int:
    return 16 + 8 * index


# One instruction: (code, jump if true, jump if false, k); jumps name a label or None (next).
_Op = tuple[int, str | None, str | None, int]


def _listing() -> list[tuple[str | None, _Op]]:
    """The filter as labelled instructions."""
    deny, nosys, allow = "deny", "nosys", "allow"
    ops: list[tuple[str | None, _Op]] = [
        (None, (_LD_W_ABS, None, None, _ARCH_AT)),
        (None, (_JEQ, None, deny, AUDIT_ARCH_X86_64)),
        (None, (_LD_W_ABS, None, None, _NR_AT)),
        (None, (_JGE, deny, None, X32_SYSCALL_BIT)),
    ]
    for name in ("clone3", "openat2"):
        ops.append((None, (_JEQ, nosys, None, NR[name])))
    for name in ("add_key", "request_key", "keyctl"):
        ops.append((None, (_JEQ, deny, None, NR[name])))
    ops += [
        (None, (_JEQ, "flags0", None, NR["unshare"])),
        (None, (_JEQ, "flags0", None, NR["clone"])),
        (None, (_JEQ, "mode1", None, NR["open"])),
        (None, (_JEQ, "mode2", None, NR["openat"])),
        (None, (_JEQ, "fcntl", None, NR["fcntl"])),
        (None, (_RET, None, None, RET_ALLOW)),
        ("flags0", (_LD_W_ABS, None, None, _arg(0))),
        (None, (_JSET, deny, allow, CLONE_NEWUSER)),
        ("mode1", (_LD_W_ABS, None, None, _arg(1))),
        (None, (_JSET, deny, allow, O_NOATIME)),
        ("fcntl", (_LD_W_ABS, None, None, _arg(1))),
        (None, (_JEQ, "mode2", allow, F_SETFL)),
        ("mode2", (_LD_W_ABS, None, None, _arg(2))),
        (None, (_JSET, deny, allow, O_NOATIME)),
        (deny, (_RET, None, None, RET_ERRNO | errno.EPERM)),
        (nosys, (_RET, None, None, RET_ERRNO | errno.ENOSYS)),
        (allow, (_RET, None, None, RET_ALLOW)),
    ]
    return ops


def assemble(listing: list[tuple[str | None, _Op]]) -> bytes:
    """struct sock_filter[] (u16 code, u8 jt, u8 jf, u32 k, native order) with the labels
    turned into forward jumps (classic BPF jumps only forward)."""
    at = {label: index for index, (label, _) in enumerate(listing) if label}

    def offset(index: int, label: str | None) -> int:
        if label is None:
            return 0
        jump = at[label] - index - 1
        if not 0 <= jump < 256:
            raise ValueError(f"jump from {index} to {label} is not a forward jump of a byte")
        return jump

    return b"".join(
        struct.pack("=HBBI", code, offset(i, jt), offset(i, jf), k)
        for i, (_, (code, jt, jf, k)) in enumerate(listing)
    )


def program() -> bytes | None:
    """The filter for this machine, or None where it is not written for its architecture."""
    if platform.machine() != "x86_64":
        return None
    return assemble(_listing())
