"""Running finwiz as a service: events (``_events``) and performance monitoring (``_monitoring``)."""
