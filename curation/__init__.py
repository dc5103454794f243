"""falldown-curate: curate, validate, mix and train yes/no VQA data for BLIP-2 with LAVIS."""

__version__ = "0.1.0"
