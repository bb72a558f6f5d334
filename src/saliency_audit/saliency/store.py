"""A content-addressed store of per-method map shards: a maps job reuses what did not change.

Why a store
-----------
A maps job of the coarse job shapes (``saliency.job_per: model_state``, or every randomization state
in one TensorFlow process) writes the maps of several methods at once, so Snakemake reruns the whole
job when one method's parameter changes: its outputs are one job's. The job itself then asks this
store, per (state, method), whether maps with exactly the same inputs were made before, and computes
only the others. Finer jobs (one per method) would avoid the rerun but pay TensorFlow's start-up and
the model's tracing per method; the store keeps the coarse jobs and makes them incremental.

What a key covers
-----------------
:func:`map_key` hashes everything that determines one method's maps of one (model, state, test
shard): the model file's and the shard file's *content* (not their paths or times, so a rewritten
but identical shard hits), the state and its randomization (seed, initializer), the method, its
resolved parameters, its noise seed, the image selection, the explained output, the channel
reduction, the Grad-CAM layer, GGCAM's combination, the stored dtype, the code of the ``saliency``
and ``models`` subpackages (:func:`saliency_audit.plan.package_hash`) and the versions of the
numerical libraries (:data:`LIBRARIES`: another environment gives other floating-point sums, so it
does not reuse these maps). ``saliency.batch_size`` is left out on purpose: it changes only how many
images one gradient call holds (the noise of image ``i`` does not depend on it), and a resource
setting must not throw the store away. A change to anything else in the key is a miss, never a
wrong hit; a needless miss (e.g. ``noise: 1`` against ``noise: 1.0``) only recomputes.

Where it lives, and what is safe
--------------------------------
One store per dataset, ``results/<dataset>/maps/.store/`` (:func:`store_root`), files
``<key[:2]>/<key>.npz``. It is not a Snakemake output: Snakemake deletes a job's outputs before
running it, and ``snakemake --delete-all-output`` deletes every output, but neither touches the
store. Entries are hard links to the maps files the jobs wrote (no extra disk while the outputs
exist; a copy where a hard link is impossible), written under a temporary name and moved into place
with ``os.replace``, so an entry is either complete or absent. Entries are immutable: the maps files
are only ever replaced (:func:`saliency_audit.io.write_npz` writes a new file and renames it), never
written in place. Entries of settings no longer in use stay (switching back is then free) until the
directory is deleted; deleting it is always safe and makes the next maps jobs compute everything.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import json
import logging
import os
import shutil
from pathlib import Path

from .. import io, paths

log = logging.getLogger(__name__)

#: Name of the store directory inside ``results/<dataset>/maps/``.
STORE_DIR = ".store"
#: Distributions whose versions are part of every key (the arithmetic of the maps).
LIBRARIES = ("numpy", "tensorflow", "keras", "scikit-image")


def _jsonable(value):
    """``json.dumps``'s fallback: numpy scalars and arrays, paths, sets (sorted)."""
    if hasattr(value, "tolist"):  # numpy scalar or array
        return value.tolist()
    if isinstance(value, (set, frozenset)):
        return sorted(value)
    if isinstance(value, Path):
        return value.as_posix()
    raise TypeError(f"map_key: cannot hash a value of type {type(value).__name__}: {value!r}")


def canonical_json(fields: dict) -> str:
    """The canonical text of ``fields``: JSON with sorted keys at every depth and no spaces, so
    dicts that differ only in key order (a method's parameters from two configs) give the same text."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=_jsonable, allow_nan=False)


def map_key(**fields) -> str:
    """The store key (sha256 hex) of one method's maps of one (model, state, shard): the hash of
    :func:`canonical_json` of ``fields``. :func:`method_keys` says which fields a maps job passes."""
    return hashlib.sha256(canonical_json(fields).encode()).hexdigest()


@functools.lru_cache(maxsize=64)
def _file_hash(path: str, mtime_ns: int, size: int, inode: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_hash(path) -> str:
    """sha256 of the file's bytes, computed once per process for each (path, mtime, size, inode)."""
    st = os.stat(path)
    return _file_hash(str(Path(path).resolve()), st.st_mtime_ns, st.st_size, st.st_ino)


@functools.lru_cache(maxsize=1)
def library_versions() -> dict:
    """Installed versions of :data:`LIBRARIES` (None for one not installed); no import of them."""
    out = {}
    for name in LIBRARIES:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def method_keys(*, model, shard, state: str, methods: dict, seeds: dict, randomization, images, target,
                channel_reduction, cam_normalization, gradcam_layer, dtype, code: dict) -> dict[str, str]:
    """The store key of each method's maps of one (model file, state, shard file).

    Parameters
    ----------
    model, shard : path
        The trained model (``model.keras``) and the test shard; their contents are hashed.
    state : str
        ``original`` or a randomization state (:func:`saliency_audit.plan.parse_state`).
    methods : dict
        method id -> resolved parameters (:func:`.jobs.job_params`).
    seeds : dict
        method id -> noise seed, for methods with noise (the others get None).
    randomization : dict or None
        ``{'seed', 'initializer'}`` of a randomized state, None for ``original``.
    images : list of str
        The ids of the shard's images that get maps (``saliency.images`` and ``max_images`` select them).
    target, channel_reduction, gradcam_layer, dtype
        The job's ``saliency.*`` settings of the same names.
    cam_normalization : str or None
        ``saliency.cam_normalization``; part of GGCAM's key only (no other method reads it).
    code : dict
        Code hashes, e.g. ``{'saliency': plan.package_hash('saliency'), 'models': ...}``.
    """
    common = dict(
        model=file_hash(model), shard=file_hash(shard), state=state, randomization=randomization,
        images=images, target=target,
        channel_reduction=channel_reduction, gradcam_layer=gradcam_layer, dtype=dtype, code=code,
        versions=library_versions(),
    )
    return {
        m: map_key(**common, method=m, params=params, seed=seeds.get(m),
                   cam_normalization=cam_normalization if m == "GGCAM" else None)
        for m, params in methods.items()
    }


def job_keys(job: dict, *, model, shard, images, target, channel_reduction, dtype, code: dict) -> dict:
    """(state, method) -> store key of every output of a maps job.

    ``job`` is the job's ``params.job`` (:func:`.jobs.states_params`: ``states``, ``methods``,
    ``seeds`` per state, ``randomization``, ``gradcam_layer``, ``cam_normalization``); the other
    arguments are as :func:`method_keys`. The randomization is part of the randomized states' keys
    only (``original`` is the trained model whatever ``randomization.*`` says).
    """
    return {
        (state, method): key
        for state in job["states"]
        for method, key in method_keys(
            model=model, shard=shard, state=state, methods=job["methods"], seeds=job["seeds"][state],
            randomization=None if state == "original" else job["randomization"], images=images, target=target,
            channel_reduction=channel_reduction, cam_normalization=job["cam_normalization"],
            gradcam_layer=job["gradcam_layer"], dtype=dtype, code=code,
        ).items()
    }


#: the maps folder's place in :data:`saliency_audit.paths.MAPS`, counted from the file's end
_MAPS_UP = len(Path(paths.MAPS).parts) - Path(paths.MAPS).parts.index("maps") - 2


def store_root(maps_file) -> Path:
    """The store of the dataset of ``maps_file`` (:data:`saliency_audit.paths.MAPS`:
    ``results/<dataset>/maps/<model>/<state>/<method>/test_<shard>.npz`` ->
    ``results/<dataset>/maps/.store``)."""
    maps = Path(maps_file).parents[_MAPS_UP]
    if maps.name != "maps":
        raise ValueError(f"{maps_file}: expected a maps file results/<dataset>/maps/<model>/<state>/<method>/<shard>.npz")
    return maps / STORE_DIR


def _link_or_copy(src: Path, dst: Path) -> str:
    """Hard-link ``src`` at the (new) path ``dst``, or copy it where linking fails (another file
    system, or one without hard links); returns 'link' or 'copy'."""
    try:
        os.link(src, dst)
        return "link"
    except OSError:
        shutil.copyfile(src, dst)
        return "copy"


class MapStore:
    """The content-addressed store under ``root`` (one directory per dataset: :func:`store_root`)."""

    def __init__(self, root):
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """Where the entry of ``key`` lives (whether or not it exists)."""
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"store key {key!r}: expected 64 lowercase hex digits (map_key)")
        return self.root / key[:2] / f"{key}.npz"

    def __contains__(self, key: str) -> bool:
        return self.path(key).is_file()

    def get(self, key: str, out_path) -> bool:
        """Put the stored file of ``key`` at ``out_path`` (a hard link, else a copy; atomically, as
        :func:`saliency_audit.io.atomic_path`); False, leaving ``out_path`` alone, when absent."""
        src = self.path(key)
        if not src.is_file():
            return False
        with io.atomic_path(out_path) as tmp:
            _link_or_copy(src, tmp)
        return True

    def put(self, key: str, out_path) -> bool:
        """Enter the finished file ``out_path`` as ``key``; False when the key was stored already
        (entries are immutable: an existing one is kept)."""
        dst = self.path(key)
        if dst.is_file():
            return False
        with io.atomic_path(dst) as tmp:
            _link_or_copy(Path(out_path), tmp)
        return True

    def fetch(self, keys: dict, outputs: dict) -> dict[str, list[str]]:
        """Materialize every stored output of a maps job; return what is left to compute.

        ``keys`` and ``outputs`` map (state, method) to the store key and the maps file. Logs
        ``<file>: from store`` per output found. Returns state -> the methods to compute, for every
        state in ``keys`` in order (an empty list: the job need not even make that state).
        """
        todo = {}
        for (state, method), key in keys.items():
            todo.setdefault(state, [])
            if self.get(key, outputs[state, method]):
                log.info("%s: from store (%s)", outputs[state, method], key[:16])
            else:
                todo[state].append(method)
        return todo

    def put_computed(self, keys: dict, outputs: dict, computed) -> None:
        """Enter the maps files of the (state, method) pairs ``computed`` (written by the job);
        logs ``<file>: computed`` per file."""
        for state, method in computed:
            self.put(keys[state, method], outputs[state, method])
            log.info("%s: computed (stored as %s)", outputs[state, method], keys[state, method][:16])
