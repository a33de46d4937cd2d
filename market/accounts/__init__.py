"""Organizations, users, API tokens and the permission checks built on them."""
