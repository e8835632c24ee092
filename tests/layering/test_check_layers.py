#!/usr/bin/python3
"""check_layers.py on synthetic trees: a clean tree passes, a tree breaking each rule fails and
names the offending file, and two tiny C objects calling each other (compiled with cc -c) make a
circle while one calling the other does not."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
CHECKER = os.path.join(HERE, "check_layers.py")

# A tree that follows every rule, including the ways a quoted include may resolve.
CLEAN = {
    "include/knit/value.h": "",
    "include/knit/knit.h": '#include "knit/value.h"\n#include "value.h"\n',
    "base/error.h": '#include <stdio.h>\n#include "knit/knit.h"\n',
    "base/error.c": '#include "base/error.h"\n',
    "codec/codec.h": '#include "base/error.h"\n',
    "codec/codec.c": '#include "codec.h"\n#include "codec/codec.h"\n',
    "transports/link.h": '#include "codec/codec.h"\n',
    "transports/shm/lane.h": '#include "transports/link.h"\n',
    "transports/stream/stream.h": '#include "transports/link.h"\n#include "lane_util.h"\n',
    "transports/stream/lane_util.h": "",
    "worker/worker.h": '#include "transports/shm/lane.h"\n',
    "runtimes/runtime.h": '#include "worker/worker.h"\n',
    "runtimes/thread/thread.c": '#include "runtimes/runtime.h"\n',
    "sched/pool.h": '#include "runtimes/runtime.h"\n',
    "sched/pool.c": '#include "sched/pool.h"\n#include "transports/stream/stream.h"\n',
    "harness/hist.h": "",
    "harness/bench/bench.h": '#include "hist.h"\n#include "sched/pool.h"\n',
    "scenarios/echo.c": '#include "bench.h"\n#include "runtimes/thread/../runtime.h"\n',
    "tests/unit/testutil.h": '#include "transports/shm/lane.h"\n',
    "tests/unit/sched/test_pool.c": '#include "testutil.h"\n',
    "build/release/base/ignored.c": '#include "nowhere.h"\n',
}


def write(root, files):
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


class CheckLayers(unittest.TestCase):
    def run_checker(self, files, *args, objects=None):
        """Writes CLEAN plus `files` ("path": None removes one) and runs the checker on it."""
        with tempfile.TemporaryDirectory() as root:
            tree = {**CLEAN, **files}
            write(root, {k: v for k, v in tree.items() if v is not None})
            extra = ["--objects"] + self.compile(root, objects) if objects else []
            p = subprocess.run([sys.executable, CHECKER, root, *args, *extra],
                               capture_output=True, text=True)
            return p.returncode, p.stdout + p.stderr

    def compile(self, root, sources):
        """Compiles {"base/a.c": code} with cc -c into .../CMakeFiles/knit.dir/./base/a.c.o (as CMake)."""
        objects = []
        for rel, code in sources.items():
            write(root, {rel: code})
            obj = os.path.join(root, "build", "CMakeFiles", "knit.dir", ".", rel + ".o")
            os.makedirs(os.path.dirname(obj), exist_ok=True)
            subprocess.run(["cc", "-c", "-o", obj, os.path.join(root, rel)], check=True)
            objects.append(obj)
        return objects

    def assertFails(self, files, *names, objects=None):
        rc, out = self.run_checker(files, objects=objects)
        self.assertEqual(rc, 1, out)
        for name in names:
            self.assertIn(name, out)
        return out

    def test_clean_tree_passes(self):
        rc, out = self.run_checker({})
        self.assertEqual(rc, 0, out)
        self.assertIn("0 violation(s)", out)
        self.assertIn("symbol edges skipped", out)

    def test_help(self):
        p = subprocess.run([sys.executable, CHECKER, "--help"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0)
        self.assertIn("SOURCE_DIR [--objects OBJ...]", p.stdout)

    def test_r1_include_from_a_higher_layer(self):
        self.assertFails({"base/futex.h": '#include <x.h>\n#include "sched/pool.h"\n'},
                         'base/futex.h:2: includes "sched/pool.h" (layer 6 sched) from layer 1')

    def test_r1_public_header_includes_only_knit(self):
        self.assertFails({"include/knit/knit.h": '#include "base/error.h"\n'},
                         'include/knit/knit.h:1: includes "base/error.h"')

    def test_r1_library_includes_top_folder(self):
        self.assertFails({"worker/worker.h": '#include "harness/hist.h"\n'}, "worker/worker.h:1")

    def test_r2_contract_includes_implementation(self):
        self.assertFails({"transports/link.h": '#include "transports/shm/lane.h"\n'},
                         "transports/link.h:1", "contract")
        self.assertFails({"runtimes/runtime.c": '#include "runtimes/thread/thread.h"\n',
                          "runtimes/thread/thread.h": ""}, "runtimes/runtime.c:1", "contract")

    def test_r2_registry_may_include_every_implementation(self):
        rc, out = self.run_checker({
            "transports/registry.c": '#include "transports/shm/lane.h"\n'
                                     '#include "transports/stream/stream.h"\n'})
        self.assertEqual(rc, 0, out)
        # only the registry: another contract file still may not
        self.assertFails({"transports/other.c": '#include "transports/shm/lane.h"\n'},
                         "transports/other.c")

    def test_r3_implementations_are_private(self):
        self.assertFails({"transports/stream/stream.h": '#include "transports/shm/lane.h"\n'},
                         "transports/stream/stream.h:1", "private")
        self.assertFails({"runtimes/process/spawn.c": '#include "runtimes/thread/thread.h"\n',
                          "runtimes/thread/thread.h": ""}, "runtimes/process/spawn.c:1")

    def test_r4_include_must_exist(self):
        self.assertFails({"codec/codec.c": '#include "codec/codec.h"\n#include "codec/cdoec.h"\n'},
                         'codec/codec.c:2: includes "codec/cdoec.h"')
        self.assertFails({"tests/unit/testutil.h": '#include "base/gone.h"\n'},
                         "tests/unit/testutil.h:1")

    def test_file_in_no_layer(self):
        self.assertFails({"core/old.c": ""}, "core/old.c:1: is in no layer")

    def test_r5_include_circle(self):
        out = self.assertFails({"sched/call.h": "", "sched/call.c": '#include "sched/pool.h"\n',
                                "sched/pool.c": '#include "sched/call.h"\n'},
                               "circle: sched/call -> sched/pool -> sched/call")
        self.assertIn('sched/pool.c:1 includes "sched/call.h"', out)

    def test_r5_symbol_circle(self):
        out = self.assertFails({}, "circle: base/a -> base/b -> base/a", objects={
            "base/a.c": "int b_f(int);\nint a_f(int x) { return x ? b_f(x - 1) : 0; }\n",
            "base/b.c": "int a_f(int);\nint b_f(int x) { return x ? a_f(x - 1) : 1; }\n"})
        self.assertIn("base/a.c uses b_f (defined in base/b.c)", out)
        self.assertIn("base/b.c uses a_f (defined in base/a.c)", out)

    def test_r5_one_way_symbols_pass(self):
        objects = {"base/a.c": "int b_f(int);\nint a_f(int x) { return b_f(x); }\n",
                   "base/b.c": "int b_f(int x) { return x + 1; }\n"}
        rc, out = self.run_checker({}, objects=objects)
        self.assertEqual(rc, 0, out)
        self.assertIn("1 through symbols", out)
        # CMake may hand $<TARGET_OBJECTS> over as one ;-joined argument.
        with tempfile.TemporaryDirectory() as root:
            write(root, CLEAN)
            joined = ";".join(self.compile(root, objects))
            p = subprocess.run([sys.executable, CHECKER, root, "--objects", joined],
                               capture_output=True, text=True)
            self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
            self.assertIn("1 through symbols", p.stdout)


if __name__ == "__main__":
    unittest.main()
