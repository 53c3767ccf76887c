"""Reading data off disk: lists, official splits, decoding (no imports, so CLI parsers stay light)."""
