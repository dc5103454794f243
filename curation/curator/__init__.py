"""The FiftyOne-backed curator: ingest, checks, review, and records for export.

FiftyOne (and its MongoDB) is imported only inside these functions.
"""
