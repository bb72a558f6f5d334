"""CPU threads of TensorFlow jobs: how many a job asks for, and telling TensorFlow to use them.

A TensorFlow job (training, maps) holds one unit of the ``gpu`` resource. Locally the global
``gpu`` resource (profiles/default: 1) is how many such jobs run at once, so each of them takes
its share of the cores: all of them when one runs at a time (``--cores 16`` -> 16 threads), half
with ``--resources gpu=2``. On a cluster every job is its own allocation of
:data:`CLUSTER_THREADS` CPUs (Slurm ``--cpus-per-task``) and one GPU, whatever the submitting
machine has.
"""

from __future__ import annotations

#: CPUs of one TensorFlow job on a cluster (Slurm ``--cpus-per-task``): feeding one GPU needs few.
CLUSTER_THREADS = 2


def tf_job_threads(cores: int | None, tf_slots: int | None, local: bool) -> int:
    """Threads of one TensorFlow job.

    Parameters
    ----------
    cores : int or None
        The run's ``--cores`` (None when not given, e.g. cluster runs with ``--jobs`` only).
    tf_slots : int or None
        The global ``gpu`` resource: how many TensorFlow jobs run at once locally (None or 0:
        unlimited, i.e. ``--cores`` alone limits them; treated as one).
    local : bool
        True for local execution (and dry runs), False when jobs go to a cluster.

    Returns
    -------
    int
        ``cores // tf_slots`` (at least 1) locally, :data:`CLUSTER_THREADS` on a cluster.
    """
    if not local or not cores:
        return CLUSTER_THREADS
    return max(1, int(cores) // max(1, int(tf_slots or 1)))


def set_tf_threads(threads: int) -> None:
    """Make TensorFlow use ``threads`` CPU threads (intra- and inter-op); call before its first op.

    Without it TensorFlow takes every core of the machine, whatever the job was given.
    """
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(int(threads))
        tf.config.threading.set_inter_op_parallelism_threads(int(threads))
    except RuntimeError:  # TensorFlow already initialised in this process: keep its setting
        pass
