"""Test doubles for external services, served on loopback."""
