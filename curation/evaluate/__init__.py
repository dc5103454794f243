"""`curate eval`: answer normalisation, yes/no and VQA metrics, the collapse alarm."""
