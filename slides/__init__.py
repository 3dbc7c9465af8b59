"""Source and build code of the workshop slide deck (see slides/README.md)."""
