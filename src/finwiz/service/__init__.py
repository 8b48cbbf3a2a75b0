"""Running finwiz as a service: events (``_events``), performance monitoring (``_monitoring``),
the health check (``_health``) and the factory that builds the components from settings
(``_factory``). Import the public names from :mod:`finwiz`."""
