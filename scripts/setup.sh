#!/usr/bin/env bash
# Set up saliency-audit on a fresh Debian/Ubuntu machine with Python 3.11:
# R + lme4/lmerTest/multcomp from Debian packages (when root), then a virtual env in .venv with
# the pinned Python packages and this package (editable). Safe to rerun: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

need_r=0
for pkg in r-base-core r-cran-lme4 r-cran-lmertest r-cran-multcomp; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need_r=1
done
if [ "$need_r" = 1 ]; then
    if [ "$(id -u)" = 0 ]; then
        echo "setup: installing R and its packages from Debian"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
            r-base-core r-base-dev r-cran-lme4 r-cran-lmertest r-cran-multcomp >/dev/null
    else
        echo "setup: not root, so R is not installed; the statistics step needs R with lme4, lmerTest, multcomp" >&2
    fi
fi

PY=${PYTHON:-python3.11}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
# (R installed after a first run without it: install again, now with rpy2)
if ! .venv/bin/python -c "import saliency_audit, snakemake, tensorflow" 2>/dev/null \
   || [ pyproject.toml -nt .venv/.installed ] \
   || { command -v R >/dev/null 2>&1 && ! .venv/bin/python -c "import rpy2" 2>/dev/null; }; then
    .venv/bin/pip install -q --upgrade pip
    extras="test"
    command -v R >/dev/null 2>&1 || extras="test-nor"
    if [ "$extras" = "test" ]; then
        .venv/bin/pip install -q -e ".[test]"
    else
        # the [test] extra without rpy2 (pyproject.toml); the statistics need R
        .venv/bin/pip install -q -e . pytest==9.2.0 snakefmt==2.1.0 import-linter==2.17
        echo "setup: no R, so no rpy2: run with \`stats: {enabled: false}\`; the tests that need R are" \
             "skipped with the reason (tests/conftest.py r_missing_reason), the shared tiny run has no statistics" >&2
    fi
    touch .venv/.installed
fi
echo "setup: ready (.venv)"
