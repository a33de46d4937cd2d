"""The app side of pricing: versioned parameters, signed quotes, revenue-cap reports.

The valuation itself is the pure ``pricing`` package; this module feeds it from the database.
"""
