"""Figures of the paper (``figures``), their inputs (``examples``) and the run's provenance (``versions``)."""
