"""Region proposal sources: Segment Anything from a local checkpoint, or classical offline
proposals when none is configured, behind one interface, with an on-disk cache::

    source = default_proposal_source(sam_checkpoint=None)  # offline, with a warning
    proposals = ProposalCache(Path("cache")).get_or_compute(image, source)

Two SAM sources share checkpoints and settings: "sam" runs segment_anything's own automatic
mask generator (``samdsk.proposals.sam``); "sam_fast" runs the batched engine
(``samdsk.proposals.engine``, bf16 on a GPU, same masks, optional embedding cache). They and
their loader (``samdsk.proposals.weights``) import torch and segment_anything only when built.

Public names are imported on first use, so importing one submodule (e.g. the engine on a GPU
machine without scikit-image) does not pull in the offline source's dependencies.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from samdsk._lazy import lazy_exports

if TYPE_CHECKING:
    from samdsk.proposals.cache import ProposalCache
    from samdsk.proposals.offline import OfflineProposalSource
    from samdsk.proposals.registry import (
        ProposalSource,
        build_proposal_source,
        default_proposal_source,
        proposal_source_registry,
    )
    from samdsk.proposals.sam_fast import FastSamProposalSource

_MODULES = {
    "cache": ("ProposalCache",),
    "offline": ("OfflineProposalSource",),
    "registry": (
        "ProposalSource",
        "build_proposal_source",
        "default_proposal_source",
        "proposal_source_registry",
    ),
    "sam_fast": ("FastSamProposalSource",),
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}

__all__ = [
    "FastSamProposalSource",
    "OfflineProposalSource",
    "ProposalCache",
    "ProposalSource",
    "build_proposal_source",
    "default_proposal_source",
    "proposal_source_registry",
]


__getattr__, __dir__ = lazy_exports(__name__, _WHERE, globals(), __all__)
