"""Servers chatcluster is measured against, each written the way its own docs show it."""
