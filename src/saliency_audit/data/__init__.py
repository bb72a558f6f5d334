"""Data ingestion: every source (synthetic, siim, rsna, folder) yields the same records and samples.

A *source* lists its records cheaply (:meth:`Source.records`) and loads one image with its ground
truth on demand (:meth:`Source.load`). :mod:`.prepare` turns records into a manifest with splits and
shards, and samples into shard files of preprocessed images.
"""
