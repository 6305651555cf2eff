"""Test and benchmark support shipped with the package: in-memory fakes and the namespace lab."""
