"""The test suite (a package so spawned worker processes can import test modules by name)."""
