"""What every stage shares: errors, configuration, atomic writes and clip files, option lookup,
lazy exports, validation-error formatting. Imports nothing else of ``rag``."""
