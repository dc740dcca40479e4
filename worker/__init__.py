"""Dify's background task layer on procrastinate and PostgreSQL."""
