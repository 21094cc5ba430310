"""Writers: osmChange, JOSM XML, review GeoJSON, report, and what reviewers need around them."""
