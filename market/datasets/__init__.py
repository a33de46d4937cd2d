"""Dataset publication (upload → pipeline → review → listing) and the catalogue."""
