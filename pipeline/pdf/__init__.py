"""PDF maps to GIS layers: georeference a page, extract its vector drawings and labels, classify
them by style, and write a GeoPackage usable as a profile's source (`sig2osm pdf extract`)."""
