"""Base models: where they come from, how they load, what they are."""
