"""Contracts every member of a family keeps, checked once over the whole registry."""
