"""Tests of the cloud emulators themselves, through the clouds' real SDKs."""
