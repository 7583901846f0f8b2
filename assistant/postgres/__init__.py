"""PostgreSQL with pgvector as the assistant's store: published builds, feedback and the query log,
shared by every server replica that points at the same database."""
