"""rlmemory: learn which sub-agent should handle each request, and remember it.

Public names are imported lazily, so ``import rlmemory`` stays cheap and optional
extras (PostgreSQL driver, LangChain, pandas) are imported only when used.

>>> import rlmemory
>>> rlmemory.MemoryDatabase.__name__
'MemoryDatabase'
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    # store
    "MemoryStore": "rlmemory.store.base",
    "SCHEMA_VERSION": "rlmemory.store.base",
    "MemoryDatabase": "rlmemory.store.sql",
    "FileBackedMemoryDatabase": "rlmemory.store.files",
    "open_store": "rlmemory.store",
    # errors
    "StoreError": "rlmemory.errors",
    "CorruptStoreError": "rlmemory.errors",
    "SchemaVersionError": "rlmemory.errors",
    "StoreBusyError": "rlmemory.errors",
    "NotAStoreError": "rlmemory.errors",
    "ReadOnlyStoreError": "rlmemory.errors",
    "EncryptionKeyError": "rlmemory.errors",
    "UnknownDecisionError": "rlmemory.errors",
    "UnknownInteractionError": "rlmemory.errors",
    "UnknownRewardError": "rlmemory.errors",
    # learning loop
    "RewardSystem": "rlmemory.rewards",
    "QLearningAgent": "rlmemory.learners.qlearning",
    "PolicyGradientAgent": "rlmemory.learners.policy_gradient",
    "LinUCBAgent": "rlmemory.learners.bandits",
    "ThompsonSamplingAgent": "rlmemory.learners.bandits",
    "EpsilonGreedyAgent": "rlmemory.learners.bandits",
    "SquareCBAgent": "rlmemory.learners.squarecb",
    "Observation": "rlmemory.types",
    "Choice": "rlmemory.types",
    "RLCoordinatorAgent": "rlmemory.coordinator",
    "create_rl_agent_architecture": "rlmemory.coordinator",
    "OfflineStateExtractor": "rlmemory.features",
    "LLMStateExtractor": "rlmemory.features",
    "TextFeaturizer": "rlmemory.features",
    "EmbeddingFeaturizer": "rlmemory.features",
    "SparseVector": "rlmemory.features",
}

__all__ = sorted([*_EXPORTS, "__version__"])


def __getattr__(name: str) -> Any:
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module 'rlmemory' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
