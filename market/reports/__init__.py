"""Regulator reports (监管报送)."""
