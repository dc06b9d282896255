"""Reproduction of the reports' tables: the catalogue of rows and the runner."""
