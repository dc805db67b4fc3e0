"""Features: a request becomes something a learner can use.

* :mod:`rlmemory.features.states` -- bounded state keys and short vectors from a request
  (:class:`OfflineStateExtractor`, :class:`LLMStateExtractor`, :func:`make_state_extractor`).
* :mod:`rlmemory.features.dicts` -- :class:`DictFeaturizer`, nested feature dictionaries
  (Personalizer's ``contextFeatures``) hashed into a fixed-length vector.
* :mod:`rlmemory.features.hashing` -- :func:`stable_hash`, the process-independent hash
  every hashed feature uses.
* :mod:`rlmemory.features.text` -- :class:`TextFeaturizer`, hashed words of a request.
* :mod:`rlmemory.features.embeddings` -- :class:`EmbeddingFeaturizer`, any embedding
  model, its vectors cached in the store.
* :class:`rlmemory.types.SparseVector` (re-exported here), a long vector kept as its
  non-zero entries.

Every public name is importable from ``rlmemory.features`` itself.
"""

from rlmemory.features.dicts import DictFeaturizer
from rlmemory.features.embeddings import EmbeddingFeaturizer
from rlmemory.features.hashing import stable_hash
from rlmemory.features.states import (
    OTHER_INTENT,
    LLMStateExtractor,
    OfflineStateExtractor,
    RequestSignals,
    make_state_extractor,
    parse_label,
)
from rlmemory.features.text import TextFeaturizer
from rlmemory.types import SparseVector

__all__ = [
    "OTHER_INTENT",
    "DictFeaturizer",
    "EmbeddingFeaturizer",
    "LLMStateExtractor",
    "OfflineStateExtractor",
    "RequestSignals",
    "SparseVector",
    "TextFeaturizer",
    "make_state_extractor",
    "parse_label",
    "stable_hash",
]
