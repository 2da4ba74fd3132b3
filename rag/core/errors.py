"""Typed exceptions of the library.

Only the CLI and the HTTP layer turn these into exit codes or HTTP answers; library code raises them
with a message that names the bad value, what is allowed and what to do.
"""

from __future__ import annotations


class RagError(Exception):
    """Base class of every error the library raises on purpose."""


class ConfigError(RagError):
    """A configuration key or value is invalid (the message names the key path)."""


class StoreError(RagError):
    """The case store cannot be opened, migrated or written."""


class IngestError(RagError):
    """One input item cannot be ingested; the batch goes on without it."""


class UnsupportedInputError(IngestError):
    """The file is of a kind or encoding the ingestion does not read."""


class DecodeError(IngestError):
    """The file claims a known format but its content cannot be decoded."""


class InvalidMediaError(IngestError):
    """The decoded content is unusable (zero frames, absurd dimensions, ...)."""


class DuplicateConflictError(IngestError):
    """An instance UID already stored with different content."""


class DeidentificationError(IngestError):
    """De-identification could not be completed; nothing is stored for the item."""


class EncoderError(RagError):
    """An encoder cannot be built, loaded or run (the message names the entry, the bad value and the fix)."""


class UnknownEncoderError(EncoderError):
    """No encoder registry entry has the requested name."""


class EncoderInputError(EncoderError, ValueError):
    """An array or tensor handed to an encoder has the wrong shape, dtype or size."""


class WeightsUnavailableError(EncoderError):
    """Pretrained weights are named but not present locally; nothing is downloaded."""


class CheckpointError(EncoderError):
    """A checkpoint file is missing, corrupt, foreign, or does not fit the encoder asked for."""


class BareStateDictError(CheckpointError):
    """The file holds a bare state dict (such as EchoPrime's released encoder), not a rag checkpoint."""


class RetrievalError(RagError):
    """Case retrieval cannot run: an unknown study, missing or inconsistent vectors, a bad parameter."""


class UnknownStudyError(RetrievalError, LookupError):
    """The study ID is not in the case store, or has nothing to retrieve with."""


class ViewWeightsError(RetrievalError, ConfigError):
    """A section x view weight table is malformed (the message names the bad entry and the allowed ones)."""


class VectorIndexError(RagError):
    """A vector index cannot be built, loaded, searched or changed (the message names the value and the fix)."""


class IndexInputError(VectorIndexError, ValueError):
    """Vectors, IDs, queries or a filter handed to an index have the wrong shape, dtype or content."""


class ManifestMismatchError(VectorIndexError):
    """An index was built from other embeddings (encoder, checkpoint, dimension) than the ones in use."""
