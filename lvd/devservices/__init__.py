"""Development services: the PostgreSQL and Redis that `make run` and `make test` need."""
