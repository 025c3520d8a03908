#!/usr/bin/env python3
"""Where a running process's resident pages are: by mapping, and for its own
executable's text, by crate.

    bench/supervisor/pages.py PID [UNSTRIPPED-BINARY]
    bench/supervisor/pages.py --path ORDER-FILE UNSTRIPPED-BINARY

Prints one line per mapping kind (the executable's text, read-only data and
writable data, heap, stack, other anonymous memory, shared libraries) with
its resident KiB, from /proc/PID/smaps, and for the executable's own
segments their size in KiB (memory size of its LOAD segments). With an unstripped build of the same
executable (same flags: only the symbol table differs, so addresses agree),
it also reads /proc/PID/pagemap (root) to find which pages of the text are
resident and attributes the bytes of the symbols on those pages to their
crate: the code the process pulled in (fault-around maps up to 64 KiB of
cached pages around each fault, so this is what is resident, not only what
ran).

With --path, it sums the sizes of the functions scripts/pid1-layout.sh
listed for the release link (the code PID 1 runs, linked first) by crate:
`crate<TAB>bytes` lines, the total first.

Output is tab-separated: `mapping<TAB>resident KiB[<TAB>segment KiB]`
lines, then `crate<TAB>bytes` lines under a `# text by crate` header.
"""

import bisect
import os
import re
import struct
import subprocess
import sys
from collections import defaultdict

PAGE = os.sysconf("SC_PAGE_SIZE")


def mappings(pid):
    """(start, end, perms, offset, path, rss_kib) for every mapping."""
    out, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) (\S+) ([0-9a-f]+) \S+ \d+\s*(.*)$", line)
            if m:
                cur = [int(m[1], 16), int(m[2], 16), m[3], int(m[4], 16), m[5].strip(), 0]
                out.append(cur)
            elif line.startswith("Rss:") and cur is not None:
                cur[5] = int(line.split()[1])
    return out


def kind(mapping, exe):
    _, _, perms, _, path, _ = mapping
    if path == exe:
        if "x" in perms:
            return "binary text (r-x)"
        if "w" in perms:
            return "binary data (rw-)"
        return "binary read-only data (r--)"
    if path == "[heap]":
        return "heap"
    if path == "[stack]":
        return "stack"
    if path in ("[vdso]", "[vvar]", "[vvar_vclock]", "[vsyscall]"):
        return "vdso"
    if path == "":
        return "other anonymous"
    if "/libc.so" in path:
        return "libc.so"
    if "/ld-linux" in path:
        return "ld.so"
    return os.path.basename(path)


def segment_kib(exe):
    """KiB of the executable's LOAD segments, by the mapping kind they become."""
    with open(exe, "rb") as f:
        elf = f.read(64)
        phoff, = struct.unpack_from("<Q", elf, 0x20)
        phentsize, phnum = struct.unpack_from("<HH", elf, 0x36)
        f.seek(phoff)
        headers = f.read(phentsize * phnum)
    out = defaultdict(int)
    for i in range(phnum):
        p_type, p_flags = struct.unpack_from("<II", headers, i * phentsize)
        memsz, = struct.unpack_from("<Q", headers, i * phentsize + 40)
        if p_type != 1:  # PT_LOAD
            continue
        perms = "x" if p_flags & 1 else "w" if p_flags & 2 else "r"
        out[kind((0, 0, perms, 0, exe, 0), exe)] += memsz // 1024
    return out


def resident_pages(pid, start, end):
    """Addresses of the resident pages in [start, end)."""
    n = (end - start) // PAGE
    with open(f"/proc/{pid}/pagemap", "rb") as f:
        f.seek(start // PAGE * 8)
        data = f.read(n * 8)
    pages = []
    for i in range(n):
        (entry,) = struct.unpack_from("<Q", data, i * 8)
        if entry >> 63 & 1:
            pages.append(start + i * PAGE)
    return pages


def crate_of(name):
    """The crate a demangled symbol belongs to; C symbols are the C library's."""
    s = name
    # <T as Trait>::f and <impl ...>: the implementing type's crate.
    while s.startswith(("<", "&", "*const ", "*mut ", "dyn ", "mut ")):
        s = s.lstrip("<&").removeprefix("*const ").removeprefix("*mut ")
        s = s.removeprefix("dyn ").removeprefix("mut ")
    if "::" not in s:
        return "C library and start-up (static)"
    head = s.split("::", 1)[0]
    head = re.sub(r"\[.*$", "", head)
    return head or "?"


def path_by_crate(order_file, binary):
    """Bytes of the listed functions by crate, the total first."""
    listed = set(open(order_file).read().split())
    run = lambda *a: subprocess.run(["nm", *a, "-S", "-n", "--defined-only", binary],
                                    check=True, capture_output=True, text=True).stdout.splitlines()
    by_crate, seen = defaultdict(int), set()
    # The same listing mangled (to match the list) and demangled (for the crate).
    for raw, demangled in zip(run(), run("-C")):
        parts, names = raw.split(" ", 3), demangled.split(" ", 3)
        if len(parts) == 4 and parts[2] in "tTwW" and parts[3] in listed and parts[0] not in seen:
            seen.add(parts[0])
            by_crate[crate_of(names[3])] += int(parts[1], 16)
    print(f"total ({len(seen)} functions)\t{sum(by_crate.values())}")
    for crate, n in sorted(by_crate.items(), key=lambda kv: -kv[1]):
        print(f"{crate}\t{n}")


def symbols(binary):
    """Sorted (address, size, crate) of the text symbols of `binary`."""
    nm = subprocess.run(
        ["nm", "-C", "-S", "-n", "--defined-only", binary],
        check=True, capture_output=True, text=True,
    ).stdout
    out = []
    for line in nm.splitlines():
        parts = line.split(" ", 3)
        if len(parts) == 4 and parts[2] in "tTwW":
            out.append((int(parts[0], 16), int(parts[1], 16), crate_of(parts[3])))
    return out


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "--path":
        return path_by_crate(sys.argv[2], sys.argv[3])
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    pid = sys.argv[1]
    exe = os.readlink(f"/proc/{pid}/exe")
    maps = mappings(pid)

    by_kind = defaultdict(int)
    for m in maps:
        by_kind[kind(m, exe)] += m[5]
    sizes = segment_kib(exe)
    for k, kib in sorted(by_kind.items(), key=lambda kv: -kv[1]):
        if k in sizes:
            print(f"{k}\t{kib}\t{sizes[k]}")
        elif kib:
            print(f"{k}\t{kib}")

    if len(sys.argv) < 3:
        return
    syms = symbols(sys.argv[2])
    addrs = [s[0] for s in syms]
    by_crate = defaultdict(int)
    # A static non-PIE executable is loaded at its link addresses; a PIE at
    # a base: the text mapping's start less its file offset's link address.
    text = [m for m in maps if m[4] == exe and "x" in m[2]]
    base = 0
    elf_type = open(exe, "rb").read(18)[16]
    if elf_type == 3:  # ET_DYN: position independent
        base = min(m[0] - m[3] for m in maps if m[4] == exe)
    for start, end, *_ in text:
        for page in resident_pages(pid, start, end):
            lo, hi = page - base, page - base + PAGE
            i = max(bisect.bisect_right(addrs, lo) - 1, 0)
            while i < len(syms) and syms[i][0] < hi:
                a, size, crate = syms[i]
                overlap = min(a + size, hi) - max(a, lo)
                if overlap > 0:
                    by_crate[crate] += overlap
                i += 1
    print("# text by crate (bytes of symbols on resident pages)")
    for crate, n in sorted(by_crate.items(), key=lambda kv: -kv[1]):
        print(f"{crate}\t{n}")


if __name__ == "__main__":
    main()
