"""Training of the encoders, apart from inference (:mod:`rag.encoders`): data, losses, augmentation,
the held-out evaluation of each epoch and the loop that writes checkpoints.

::

    from rag.train import TrainConfig, train

    result = train(store, media_dir, TrainConfig(epochs=40, out=Path("ckpt"), cache_dir=Path("cache")))
    print(result.checkpoint, result.history[-1].line())

- :mod:`rag.train.data`: stored clips with their reports, the patient split, clip batches, text features;
- :mod:`rag.train.findings`: finding grades of reports and the soft contrastive targets they give;
- :mod:`rag.train.cache`: every clip decoded once into a memory-mapped uint8 cache that batches read;
- :mod:`rag.train.heads`: ordinal finding and measurement heads on the embedding;
- :mod:`rag.train.augment`: random re-acquisition of training clips;
- :mod:`rag.train.losses`: the losses of one batch;
- :mod:`rag.train.evaluate`: the held-out evaluation that ends every epoch;
- :mod:`rag.train.config`: :class:`TrainConfig`; :mod:`rag.train.loop`: :func:`train` (checkpoints, resume).

Importing this package imports neither torch nor the store: names load on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rag.core.lazy import lazy_exports

if TYPE_CHECKING:
    from rag.train.config import TrainConfig
    from rag.train.loop import train

_LAZY: dict[str, str] = {
    "TrainConfig": "rag.train.config",
    "train": "rag.train.loop",
}


__getattr__, __dir__ = lazy_exports(__name__, _LAZY, globals())


__all__ = ["TrainConfig", "train"]
