"""Export runs as adapters or merged models, and merge several fine-tunes."""
