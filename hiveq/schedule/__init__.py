"""Recurring schedules: cron ticks that submit a task, each exactly once (docs/schedules.md)."""
