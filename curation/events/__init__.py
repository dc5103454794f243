"""Fall events on video: frame scores in, alerts out."""

from curation.events.engine import Event, EventEngine, run_events
from curation.events.params import EventParams, load_event_params

__all__ = ["Event", "EventEngine", "EventParams", "load_event_params", "run_events"]
