"""Scenarios (场景机会清单) and data products (数据产品): issue 16, item 4."""
