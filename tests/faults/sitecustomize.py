"""Fault injection for the cluster drills of tests/test_slurm.py; active only when this folder is on
PYTHONPATH (Python imports ``sitecustomize`` at start-up) and the variable below is set.

SALIENCY_AUDIT_FAIL_ONCE="<script>:<marker>": the first Python process that runs the workflow
script ``workflow_scripts/<script>.py`` (Snakemake runs it as ``.snakemake/scripts/tmpXXXX.<script>.py``)
creates ``<marker>`` and exits with status 1 before doing any work, as a job on a dying node would;
every later process runs normally. ``O_EXCL`` makes "first" exact across concurrent jobs.
"""

import os
import sys

_spec = os.environ.get("SALIENCY_AUDIT_FAIL_ONCE")
if _spec and sys.argv and sys.argv[0]:
    _script, _marker = _spec.split(":", 1)
    if os.path.basename(sys.argv[0]).endswith(f".{_script}.py"):
        try:
            os.close(os.open(_marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            pass
        else:
            print(f"injected fault: {_script} fails once (marker {_marker})", file=sys.stderr, flush=True)
            sys.exit(1)
