"""Glue for workflow scripts: send logging to the rule's log, show progress, fail with a clear message."""

from __future__ import annotations

import contextlib
import logging
import sys

from .errors import InputError


@contextlib.contextmanager
def rule_logging(snakemake):
    """Log to ``snakemake.log[0]`` (and stderr); turn an :class:`InputError` into a one-line error."""
    handlers = [logging.StreamHandler(sys.stderr)]
    if len(snakemake.log):
        handlers.append(logging.FileHandler(snakemake.log[0], mode="w"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s", handlers=handlers, force=True)
    log = logging.getLogger(f"saliency_audit.rule.{snakemake.rule}")
    log.info("rule %s, wildcards %s", snakemake.rule, dict(snakemake.wildcards.items()))
    try:
        yield log
    except InputError as exc:
        log.error("%s", exc)
        sys.exit(f"ERROR in rule {snakemake.rule}: {exc}")


def progress(iterable=None, **kwargs):
    """A tqdm progress bar on stderr (shown in the console and in the job's log)."""
    from tqdm.auto import tqdm

    kwargs.setdefault("mininterval", 2.0)
    kwargs.setdefault("file", sys.stderr)
    return tqdm(iterable, **kwargs)
