"""The maps index of a BYOM dataset: :mod:`saliency_audit.maps_index`, seen from :mod:`.byom`.

The index is read at parse time by :mod:`saliency_audit.plan` (which models, states and methods a
BYOM dataset has), so its code lives in the lowest layers, below ``plan``; the importer and the
workflow's ``byom`` rules reach it here too.
"""

from ..maps_index import (  # noqa: F401
    LABEL,
    ORIGINAL,
    RESERVED_METHODS,
    ROLE_IDS,
    ROLES,
    expand_datasets,
    index_path,
    layout,
    read_index,
    slug,
)
