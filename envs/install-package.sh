#!/usr/bin/env bash
# Every envs/<env>.post-deploy.sh links here (Snakemake looks the script up by that name).
# Snakemake runs it once, inside the freshly created conda env, after the packages of the env
# file: it installs this project (editable, so the code the workflow hashes is the code that runs;
# --no-deps, so the env keeps only its own pinned packages). rules/common.smk sets
# SALIENCY_AUDIT_SRC to the workflow's base directory (pip cannot resolve a path relative to the env
# file: Snakemake creates the env from a copy under .snakemake/conda).
set -euo pipefail
: "${SALIENCY_AUDIT_SRC:?set by rules/common.smk to the repository root}"
python -m pip install --no-deps --no-build-isolation -e "$SALIENCY_AUDIT_SRC"
