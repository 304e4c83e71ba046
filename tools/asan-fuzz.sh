#!/usr/bin/env bash
# Fuzz the compiled framing (pygwire._chotpath) under AddressSanitizer.
#
# Builds the extension with -fsanitize=address into a scratch venv (a normal,
# non-editable install, so the work tree's own build is left alone), checks
# that the built module really links the sanitizer, then runs the offline
# layers (tests/unit and tests/fuzz, which hold the C-versus-Python
# differential tests) over it with many more examples than usual.
#
#   tools/asan-fuzz.sh                 # 5,000 examples per fuzz test
#   PYGWIRE_FUZZ_EXAMPLES=50000 tools/asan-fuzz.sh
#   tools/asan-fuzz.sh -x -k decode    # extra arguments go to pytest
#
# Python itself is not built with ASan, so the runtime is preloaded, leak
# detection is off (the interpreter keeps memory on purpose until exit), and
# PYTHONMALLOC=malloc sends every Python object to malloc, where ASan sees
# the bounds of each one (pymalloc would hide small bytes objects inside its
# arenas).  Needs gcc (or CC=clang with its own runtime in ASAN_LIB).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
CC=${CC:-gcc}
VENV=${ASAN_VENV:-build/asan-venv}
EXAMPLES=${PYGWIRE_FUZZ_EXAMPLES:-5000}
ASAN_LIB=${ASAN_LIB:-$("$CC" -print-file-name=libasan.so)}

if [ ! -e "$ASAN_LIB" ]; then
    echo "no ASan runtime found (tried $ASAN_LIB); set ASAN_LIB" >&2
    exit 2
fi

"$PYTHON" -m venv --clear "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
"$VENV/bin/python" -m pip install --quiet "pytest>=8" "hypothesis>=6.100"
# setuptools skips an extension whose build output looks up to date: start
# clean, and clean up afterwards, so that no later install of this tree
# picks up the instrumented objects.
rm -rf build/lib.* build/temp.* build/bdist.*
trap 'rm -rf build/lib.* build/temp.* build/bdist.*' EXIT
# With the docs extra: the docstring tests read the sources with griffe.
CC="$CC" \
CFLAGS="-fsanitize=address -fno-omit-frame-pointer -g -O1" \
LDFLAGS="-fsanitize=address" \
    "$VENV/bin/python" -m pip install --quiet --no-cache-dir ".[docs]"

run() {
    LD_PRELOAD="$ASAN_LIB" \
    ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1" \
    PYTHONMALLOC=malloc \
        "$VENV/bin/python" "$@"
}

so=$(run -c "import pygwire._chotpath as c; print(c.__file__)")
# Not "ldd | grep -q": grep stops reading at the first match, ldd dies of
# SIGPIPE, and pipefail turns the match into a failure.
if ! ldd "$so" | grep libasan >/dev/null; then
    echo "$so is not built with AddressSanitizer" >&2
    exit 1
fi
run -c "from pygwire import _hotpath; assert _hotpath.implementation() == 'c', 'compiled framing is not active'"
echo "fuzzing $so under AddressSanitizer ($EXAMPLES examples per test)"

# CI=true: the differential tests must not skip.
CI=true PYGWIRE_FUZZ_EXAMPLES="$EXAMPLES" run -bb -m pytest -q -p no:cacheprovider \
    tests/unit tests/fuzz "$@"
