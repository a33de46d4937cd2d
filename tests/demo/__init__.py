"""Tests of the Shanghai demo-data generator (market.demo)."""
