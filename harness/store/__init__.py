"""Measurement stores from the command line (``python -m harness.store``), without loading any model.

:mod:`harness.store.merge` combines the stores that several machines (shards of one run) filled into one, verifying
every entry with the store's own check (:func:`harness.runtime.measurement_store.check_entry`) and refusing, before
writing anything, a corrupt entry or one kind/key held with different values by two places.
"""
