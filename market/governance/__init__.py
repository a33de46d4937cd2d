"""Governance that public-data rules ask for: data grading (GB/T 43697-2024), the red and black
lists (红黑榜), the public signed license status list and registration certificates
(数据资产登记)."""
