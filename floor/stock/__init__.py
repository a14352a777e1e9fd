"""Stock of the items that make or break a kit, and the wave release check."""
