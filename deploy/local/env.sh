#!/usr/bin/env bash
# The connection settings of the local test services that kafka.sh and
# postgres.sh start, for tests and for a shell.
#
#   deploy/local/env.sh                       prints KEY=value lines
#   env $(deploy/local/env.sh) go test ./...  runs one command with them
#   . deploy/local/env.sh                     exports them into the calling shell
#
# In a Makefile recipe: env $$(deploy/local/env.sh) go test ./...
#
# KAFKA_PORT and PG_PORT are honoured as in the start scripts. No `set -e`
# here: when sourced it would leak into the caller's shell.

KAFKA_BROKERS="127.0.0.1:${KAFKA_PORT:-19092}"
DATABASE_URL="postgres://postgres@127.0.0.1:${PG_PORT:-55432}/costplane_test?sslmode=disable"

# `return` only works in a sourced file; executed, the subshell fails.
if (return 0 2>/dev/null); then
  export KAFKA_BROKERS DATABASE_URL
else
  printf 'KAFKA_BROKERS=%s\n' "$KAFKA_BROKERS"
  printf 'DATABASE_URL=%s\n' "$DATABASE_URL"
fi
