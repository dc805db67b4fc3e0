"""Features: a request becomes something a learner can use.

* :mod:`rlmemory.features.states` -- bounded state keys and short vectors from a request
  (:class:`OfflineStateExtractor`, :class:`LLMStateExtractor`, :func:`make_state_extractor`).
* :mod:`rlmemory.features.dicts` -- :class:`DictFeaturizer`, nested feature dictionaries
  (Personalizer's ``contextFeatures``) hashed into a fixed-length vector.
* :mod:`rlmemory.features.hashing` -- :func:`stable_hash`, the process-independent hash
  every hashed feature uses.

Every public name is importable from ``rlmemory.features`` itself.
"""

from rlmemory.features.dicts import DictFeaturizer
from rlmemory.features.hashing import stable_hash
from rlmemory.features.states import (
    OTHER_INTENT,
    LLMStateExtractor,
    OfflineStateExtractor,
    RequestSignals,
    make_state_extractor,
    parse_label,
)

__all__ = [
    "OTHER_INTENT",
    "DictFeaturizer",
    "LLMStateExtractor",
    "OfflineStateExtractor",
    "RequestSignals",
    "make_state_extractor",
    "parse_label",
    "stable_hash",
]
