"""Consented lookups (授权查询): a bank reads one enterprise's records with its authorization.

- ``models``: the consent (requested → granted | denied; granted → revoked; expired is derived
  from ``valid_until``) and the lookup log;
- ``services``: request, decide, record a paper letter, revoke, read, look up, access log;
- ``records``: reading one enterprise's rows from the licensed Parquet tables (no Flask);
- ``api`` / ``views``: the JSON API and the web pages, over the same services.
"""
