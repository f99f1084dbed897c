"""Storage: repository and unit-of-work protocols, and their SQLAlchemy implementation."""
