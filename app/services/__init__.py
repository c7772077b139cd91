"""Data-layer functions: keyword-only, one session in, ORM rows out."""
