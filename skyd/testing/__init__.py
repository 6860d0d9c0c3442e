"""Test support maintained like product code: fakes of remote systems and daemon harnesses."""
