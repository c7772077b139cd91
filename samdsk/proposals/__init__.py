"""Region proposal sources: Segment Anything from a local checkpoint, or classical offline
proposals when none is configured, behind one interface, with an on-disk cache::

    source = default_proposal_source(sam_checkpoint=None)  # offline, with a warning
    proposals = ProposalCache(Path("cache")).get_or_compute(image, source)

The SAM source (``samdsk.proposals.sam``) and its loader (``samdsk.proposals.weights``)
import torch and segment_anything; they are imported only when a SAM source is built.
"""

from samdsk.proposals.cache import ProposalCache
from samdsk.proposals.offline import OfflineProposalSource
from samdsk.proposals.registry import (
    ProposalSource,
    build_proposal_source,
    default_proposal_source,
    proposal_source_registry,
)

__all__ = [
    "OfflineProposalSource",
    "ProposalCache",
    "ProposalSource",
    "build_proposal_source",
    "default_proposal_source",
    "proposal_source_registry",
]
