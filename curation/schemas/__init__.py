"""Pydantic models: the LAVIS VQA annotation contract and the run configs."""

from curation.schemas.annotation import KEY_ALIASES, VQARecord, image_path_problem

__all__ = ["KEY_ALIASES", "VQARecord", "image_path_problem"]
