"""Trimmed API specs the strict fakes validate against (see PROVENANCE.md beside this file)."""
