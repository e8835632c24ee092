"""The gate's builds: each side's sources exported from git (or the working tree) and built in a
tree of its own under build/gate/, leaving the user's working tree and build/release alone.

  build/gate/src/<commit>/       `git archive` of a revision (made once, then reused)
  build/gate/src/worktree/       the working tree's tracked and untracked, not ignored files,
                                 synchronised file by file (unchanged files keep their times,
                                 so rebuilds are incremental)
  build/gate/<side>-<key>[-<args>]/   the Release build of knit-bench for one side (base or
                                 new), one tree per side even for the same revision
"""
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile

WORKTREE = "WORKTREE"


class BuildError(Exception):
    """A revision that cannot be resolved, exported or built: exit 2."""


def _git(root, *args, binary=False):
    p = subprocess.run(["git", "-C", root, *args], capture_output=True, text=not binary)
    if p.returncode != 0:
        err = p.stderr if isinstance(p.stderr, str) else p.stderr.decode(errors="replace")
        raise BuildError(f"git {' '.join(args)}: {err.strip()}")
    return p.stdout


def resolve(root, rev):
    """{'label', 'commit' (None for the working tree), 'key'} of a revision name."""
    if rev == WORKTREE:
        head = _git(root, "rev-parse", "--short=12", "HEAD").strip()
        return {"label": f"{WORKTREE} (on {head})", "commit": None, "key": "worktree"}
    try:
        sha = _git(root, "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}").strip()
    except BuildError:
        raise BuildError(f"{rev!r} is not a revision of this repository (a commit, branch or "
                         f"tag; {WORKTREE} for the working tree)") from None
    return {"label": f"{rev} ({sha[:12]})", "commit": sha, "key": sha[:12]}


def export(root, spec, gate_dir):
    """The source directory of `spec` (from resolve()), created or refreshed."""
    src_root = os.path.join(gate_dir, "src")
    os.makedirs(src_root, exist_ok=True)
    dest = os.path.join(src_root, spec["key"])
    if spec["commit"] is None:
        _sync_worktree(root, dest)
        return dest
    if os.path.exists(os.path.join(dest, ".gate-export-complete")):
        return dest
    tmp = tempfile.mkdtemp(dir=src_root, prefix=".export-")
    data = _git(root, "archive", "--format=tar", spec["commit"], binary=True)
    with tempfile.TemporaryFile() as f:
        f.write(data)
        f.seek(0)
        with tarfile.open(fileobj=f) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:
                tar.extractall(tmp)
    open(os.path.join(tmp, ".gate-export-complete"), "w").close()
    shutil.rmtree(dest, ignore_errors=True)
    os.rename(tmp, dest)
    return dest


def _sync_worktree(root, dest):
    listed = _git(root, "ls-files", "-z", "--cached", "--others", "--exclude-standard")
    files = sorted({f for f in listed.split("\0") if f})
    keep = set()
    for rel in files:
        src = os.path.join(root, rel)
        if not os.path.isfile(src) or os.path.islink(src):
            continue  # deleted in the working tree, or a link: not part of the build
        keep.add(rel)
        out = os.path.join(dest, rel)
        with open(src, "rb") as f:
            data = f.read()
        try:
            with open(out, "rb") as f:
                if f.read() == data:
                    continue
        except OSError:
            pass
        os.makedirs(os.path.dirname(out), exist_ok=True)
        with open(out, "wb") as f:
            f.write(data)
        shutil.copymode(src, out)
    for dirpath, _dirs, names in os.walk(dest, topdown=False):
        for n in names:
            rel = os.path.relpath(os.path.join(dirpath, n), dest)
            if rel not in keep:
                os.remove(os.path.join(dirpath, n))
        if dirpath != dest and not os.listdir(dirpath):
            os.rmdir(dirpath)


def build_dir(gate_dir, side, spec, cmake_args):
    name = f"{side}-{spec['key']}"
    if cmake_args:
        name += "-" + hashlib.sha1("\0".join(cmake_args).encode()).hexdigest()[:8]
    return os.path.join(gate_dir, name)


def build(src, bdir, cmake_args, log):
    """Configure (once per set of arguments) and build knit-bench; returns its path."""
    os.makedirs(bdir, exist_ok=True)
    args_file = os.path.join(bdir, "gate-cmake-args")
    wanted = "\n".join(cmake_args)
    old = open(args_file).read() if os.path.exists(args_file) else None
    if old is not None and old != wanted:
        shutil.rmtree(bdir)
        os.makedirs(bdir)
    with open(log, "a", encoding="utf-8") as out:
        if not os.path.exists(os.path.join(bdir, "build.ninja")):
            cmd = ["cmake", "-S", src, "-B", bdir, "-G", "Ninja", "-DCMAKE_BUILD_TYPE=Release",
                   "-DKNIT_BUILD_TESTS=OFF", *cmake_args]
            _step(cmd, out, log, "configure")
            with open(args_file, "w") as f:
                f.write(wanted)
        _step(["cmake", "--build", bdir, "--target", "knit-bench"], out, log, "build")
    exe = os.path.join(bdir, "harness", "knit-bench")
    if not os.access(exe, os.X_OK):
        raise BuildError(f"the build of {src} made no {exe}")
    return exe


def _step(cmd, out, log, what):
    out.write("$ " + " ".join(cmd) + "\n")
    out.flush()
    p = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        with open(log, encoding="utf-8", errors="replace") as f:
            tail = "".join(f.readlines()[-25:])
        raise BuildError(f"{what} failed ({' '.join(cmd)}); the end of {log}:\n{tail}")
