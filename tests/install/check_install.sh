#!/usr/bin/env bash
# Install knit from a build tree into a temporary prefix, then build and run the examples
# against it twice: through find_package(knit) and through pkg-config. Also checks that the
# quick start in docs/API.md is exactly examples/quickstart.c.
# Usage: check_install.sh BUILD_DIR SOURCE_DIR
set -euo pipefail
build="$1"
src="$2"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# The quick start printed in docs/API.md must be the program this test runs.
awk '/^```c quickstart$/{on=1; next} /^```$/{on=0} on' "$src/docs/API.md" >"$work/api-quickstart.c"
if ! diff -u "$src/examples/quickstart.c" "$work/api-quickstart.c"; then
    echo "docs/API.md's quick start differs from examples/quickstart.c" >&2
    exit 1
fi

cmake --install "$build" --prefix "$work/prefix" >/dev/null
test -f "$work/prefix/include/knit/knit.h"
test -f "$work/prefix/lib/pkgconfig/knit.pc" || test -f "$work/prefix/lib64/pkgconfig/knit.pc"

cmake -S "$src/examples" -B "$work/examples" -DCMAKE_PREFIX_PATH="$work/prefix" >/dev/null
cmake --build "$work/examples" >/dev/null
"$work/examples/quickstart" | tee "$work/out.txt"
grep -q '^square(2) = 4, greet = hello knit$' "$work/out.txt"

pcdir="$(dirname "$(find "$work/prefix" -name knit.pc | head -1)")"
# shellcheck disable=SC2046
cc -std=gnu11 -o "$work/quickstart-pc" "$src/examples/quickstart.c" \
    $(PKG_CONFIG_PATH="$pcdir" pkg-config --cflags --libs --static knit)
"$work/quickstart-pc" >/dev/null
echo "install: find_package and pkg-config builds of the quick start both run"
