"""Runners: execute a job's setup and run on an instance and report how they ended."""
