"""Deployment artefacts: checks and generators for the chart, the Compose stack and the flakes."""
