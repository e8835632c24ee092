#!/usr/bin/python3
"""Check knit's layering: which folder may include which, and no circle between library files.

Usage: check_layers.py SOURCE_DIR [--objects OBJ...]

Every quoted #include of every C/C++ source under SOURCE_DIR is resolved like the compiler does
(the including file's folder first, then the -I folders below) and checked against the rules:
  R1  a file of a layer includes only files of its own layer or lower ones;
  R2  a split layer's contract (files directly in its folder) includes none of its implementations
      (except its registry, the one file that maps ids to every implementation's table);
  R3  an implementation (a subfolder of a split layer) includes no other implementation;
  R4  every quoted include resolves to an existing file;
  R5  no circle between library modules (a .c with its same-stem .h), through includes and,
      given --objects (the library's object files), through the symbols nm shows they use.
Every violation is printed; exit 1 if any, 0 if none, 2 on bad usage.
"""
import argparse
import collections
import os
import re
import subprocess
import sys

# --- the rules (data) -----------------------------------------------------------------------------
# Library layers, lowest first (R1). Renaming a folder is a change to this list only.
LAYERS = ["include/knit", "base", "codec", "transports", "worker", "runtimes", "sched"]
# Layers split into a contract (files directly in the folder) and implementations (one per
# subfolder, e.g. transports/shm/): R2 and R3 apply to them.
SPLIT = ["transports", "runtimes"]
# The registry of a split layer: the one contract file that may include every implementation
# (it maps transport or runtime ids to their operation tables). Nothing includes it back.
REGISTRY = "registry.c"
# Above every layer: these may include anything (they are not library modules either).
TOP = ["harness", "scenarios", "tests", "examples", "interop"]
# Never scanned (besides hidden folders and build trees, i.e. folders holding a CMakeCache.txt).
SKIP = ["build"]
# -I folders of every target, searched after the including file's folder: the repo root
# ("base/futex.h") and include/ ("knit/knit.h").
INCLUDE_DIRS = [".", "include"]
# Extra -I folders that the top folders' CMake targets add (knit_hist, knit_bench_floor,
# knit_gbench, knit_testutil).
EXTRA_INCLUDE_DIRS = {
    "harness": ["harness", "harness/bench"],
    "scenarios": ["harness", "harness/bench"],
    "tests": ["tests/unit", "harness", "harness/bench"],
}
SOURCE_EXTS = (".c", ".h", ".cc", ".cpp", ".hpp")
OBJECT_RE = re.compile(r"CMakeFiles/[^/]+\.dir/(.+?)\.(o|obj)$")  # .../knit.dir/sched/pool.c.o
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*"([^"]+)"')
TOP_RANK = len(LAYERS)


def die(message):
    print(f"check_layers.py: {message}", file=sys.stderr)
    sys.exit(2)


def place(rel):
    """(rank, layer, implementation) of a repo-relative path; rank None: in no known folder."""
    for rank, layer in enumerate(LAYERS):
        if rel.startswith(layer + "/"):
            rest = rel[len(layer) + 1:].split("/")
            impl = layer + "/" + rest[0] if layer in SPLIT and len(rest) > 1 else None
            return rank, layer, impl
    for top in TOP:
        if rel.startswith(top + "/"):
            return TOP_RANK, top, None
    return None, rel.split("/")[0] if "/" in rel else ".", None


def layer_name(rank, layer):
    return f"top {layer}" if rank == TOP_RANK else f"{rank} {layer}" if rank is not None \
        else f"none: {layer}/ is in no layer"


def sources(root):
    for d, dirs, files in os.walk(root):
        rel_d = os.path.relpath(d, root)
        dirs[:] = sorted(x for x in dirs if not x.startswith(".")
                         and not (rel_d == "." and x in SKIP)
                         and not os.path.exists(os.path.join(d, x, "CMakeCache.txt")))
        for f in sorted(files):
            if f.endswith(SOURCE_EXTS):
                yield os.path.normpath(os.path.join(rel_d, f)).replace(os.sep, "/")


def resolve(root, rel, name):
    """The repo-relative file a quoted include names, or None."""
    extra = EXTRA_INCLUDE_DIRS.get(rel.split("/")[0], [])
    for d in [os.path.dirname(rel)] + INCLUDE_DIRS + extra:
        cand = os.path.normpath(os.path.join(d, name)).replace(os.sep, "/")
        if not cand.startswith("../") and os.path.isfile(os.path.join(root, cand)):
            return cand
    return None


def check_include(rel, line, name, target):
    """The R1-R3 violation of one resolved include, or None."""
    s_rank, s_layer, s_impl = place(rel)
    t_rank, t_layer, t_impl = place(target)
    if s_rank is None or s_rank == TOP_RANK:  # no layer (reported once) or top: no rule
        return None
    where = f'{rel}:{line}: includes "{name}"'
    if t_rank is None or t_rank > s_rank:
        return (f"{where} (layer {layer_name(t_rank, t_layer)}) from layer "
                f"{layer_name(s_rank, s_layer)}: a layer includes only its own or lower ones")
    if s_layer == t_layer and t_impl and s_impl != t_impl:
        if s_impl is None and rel == f"{s_layer}/{REGISTRY}":
            return None
        if s_impl is None:
            return (f"{where} (implementation {t_impl}/) from the contract {s_layer}/: "
                    f"a contract must not include its implementations")
        return (f"{where} (implementation {t_impl}/) from implementation {s_impl}/: "
                f"implementations are private to each other")
    return None


def module(rel):
    rank = place(rel)[0]
    return os.path.splitext(rel)[0] if rank is not None and rank < TOP_RANK else None


def symbol_edges(objects, edges, modules):
    """Adds module -> module edges for each symbol an object uses that another defines."""
    defined, used = {}, []
    for obj in objects:
        m = OBJECT_RE.search(obj.replace(os.sep, "/"))
        if not m:
            die(f"cannot map {obj} to a source (want .../<target>.dir/<src>.o)")
        src = os.path.normpath(m.group(1)).replace(os.sep, "/")  # knit.dir/./base/x.c.o
        out = subprocess.run(["nm", "-P", obj], capture_output=True, text=True)
        if out.returncode != 0:
            die(f"nm {obj} failed: {out.stderr.strip()}")
        modules.add(os.path.splitext(src)[0])
        for fields in (ln.split() for ln in out.stdout.splitlines()):
            if len(fields) < 2:
                continue
            name, kind = fields[0], fields[1]
            if kind == "U":
                used.append((src, name))
            elif kind.isupper():
                defined.setdefault(name, src)
    for src, name in used:
        dst = defined.get(name)
        a, b = os.path.splitext(src)[0], dst and os.path.splitext(dst)[0]
        if dst and a != b:
            edges[(a, b)].setdefault("symbol", f"{src} uses {name} (defined in {dst})")


def cycles(edges):
    """One shortest cycle through each module that is on a cycle, without duplicates."""
    succ = collections.defaultdict(set)
    for a, b in edges:
        succ[a].add(b)
    found = set()
    for start in sorted(succ):
        prev, queue = {start: None}, collections.deque([start])
        while queue:
            node = queue.popleft()
            if start in succ[node]:
                path = [node]
                while prev[path[-1]] is not None:
                    path.append(prev[path[-1]])
                path.reverse()
                i = path.index(min(path))
                found.add(tuple(path[i:] + path[:i]))
                break
            for nxt in sorted(succ[node]):
                if nxt not in prev:
                    prev[nxt] = node
                    queue.append(nxt)
    return sorted(found)


def main(argv=None):
    ap = argparse.ArgumentParser(
        prog="check_layers.py", usage="check_layers.py SOURCE_DIR [--objects OBJ...]",
        description=__doc__.split("\n\n")[0])
    ap.add_argument("source_dir", metavar="SOURCE_DIR", help="the repository root")
    ap.add_argument("--objects", nargs="*", metavar="OBJ", help="the library's object files "
                    "($<TARGET_OBJECTS:knit>; ;-joined lists are split) for the symbol edges")
    args = ap.parse_args(argv)
    root = os.path.abspath(args.source_dir)
    objects = [o for arg in args.objects or [] for o in arg.split(";") if o]
    missing = [o for o in objects if not os.path.isfile(o)]
    if not os.path.isdir(root) or missing:
        die(f"no such directory or object: {(missing or [root])[0]}")

    violations, n_files, n_includes = [], 0, 0
    edges = collections.defaultdict(dict)  # (module, module) -> {"include"|"symbol": evidence}
    modules = set()
    for rel in sources(root):
        n_files += 1
        if module(rel):
            modules.add(module(rel))
        elif place(rel)[0] is None:
            violations.append(f"{rel}:1: is in no layer (add its folder to LAYERS or TOP)")
        with open(os.path.join(root, rel), encoding="utf-8", errors="replace") as f:
            for line, text in enumerate(f, 1):
                m = INCLUDE_RE.match(text)
                if not m:
                    continue
                n_includes += 1
                name = m.group(1)
                target = resolve(root, rel, name)
                if target is None:
                    violations.append(f'{rel}:{line}: includes "{name}", which is no file '
                                      f"(looked in the file's folder and the -I folders)")
                    continue
                problem = check_include(rel, line, name, target)
                if problem:
                    violations.append(problem)
                a, b = module(rel), module(target)
                if a and b and a != b:
                    edges[(a, b)].setdefault("include", f'{rel}:{line} includes "{name}"')
    if objects:
        symbol_edges(objects, edges, modules)
    else:
        print("check_layers.py: no --objects given: symbol edges skipped "
              "(circles through includes are still checked)")

    for cyc in cycles(edges):
        lines = [f"circle: {' -> '.join(cyc + (cyc[0],))}"]
        for a, b in zip(cyc, cyc[1:] + cyc[:1]):
            lines.append(f"    {a} -> {b}: " + "; ".join(edges[(a, b)].values()))
        violations.append("\n".join(lines))

    for v in violations:
        print(v)
    n_inc, n_sym = (sum(kind in e for e in edges.values()) for kind in ("include", "symbol"))
    print(f"layering: {n_files} files checked, {n_includes} includes checked, {len(modules)} "
          f"modules, {len(edges)} edges ({n_inc} through includes, {n_sym} through symbols"
          f"{'' if objects else ' (skipped)'}), {len(violations)} violation(s)")
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
