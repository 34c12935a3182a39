"""Plain tokens and their armored one-line text form."""
