"""Folium map builders (reviewer, council, index) and their vendored web assets."""
