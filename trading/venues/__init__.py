"""Where orders go: one module per kind of venue behind the small interface in `base`."""
