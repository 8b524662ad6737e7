"""Pure parse functions: an API payload in, items or follow-up parameters out."""
