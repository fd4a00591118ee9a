"""archive: history that outlives Redis.

An archiver follows the namespace's event stream with a consumer group and writes tasks, jobs
and every custody event to SQL (SQLite by default, PostgreSQL in production); reads fall through
to it once Redis has let a finished task go. docs/archive.md has the design.
"""
