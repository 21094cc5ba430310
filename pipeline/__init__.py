"""sig2osm pipeline: CLI, profile, stage runner and inputs (SIG layers, PDF maps, OSM data),
over the shared kernel (`pipeline.kernel`)."""
