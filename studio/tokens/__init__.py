"""The token store: a dataset encoded once, on disk, read through memory maps.

`rows` holds encoded rows as flat arrays (token ids, trained spans, row boundaries, the
per-row facts the diagnostics need), in memory or in a store folder. `build` encodes a
dataset into one with worker processes. `cache` keys stores by data, tokenizer and
settings, and lists, pins and evicts them. The label inspector's scan, the Train check, the
training process and resume all read the same store (`studio.labels.packing` makes
training sequences of it).
"""
