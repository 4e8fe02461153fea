"""The doc-correctness gate: pages rendered as readers see them, every block checked or skipped."""
