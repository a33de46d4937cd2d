"""Parsing: exactly one plain SELECT, comments dropped (pure)."""

from __future__ import annotations

from sqlglot import exp
from sqlglot.dialects.dialect import Dialect
from sqlglot.errors import SqlglotError
from sqlglot.tokens import TokenType

from ..errors import (
    FORBIDDEN_CONSTRUCT,
    MULTIPLE_STATEMENTS,
    NOT_SELECT,
    PARSE_ERROR,
    PolicyViolation,
)

MAX_SQL_CHARS = 20_000
MAX_NODES = 4_000
DIALECT = "duckdb"
_DIALECT = Dialect.get_or_raise(DIALECT)


def parse(sql: str) -> exp.Select:
    """Parse exactly one plain SELECT statement (comments dropped).

    Raises PolicyViolation: parse_error, multiple_statements, not_select, forbidden_construct.
    """
    if not isinstance(sql, str) or not sql.strip():
        raise PolicyViolation(PARSE_ERROR, "the query is empty")
    if len(sql) > MAX_SQL_CHARS:
        raise PolicyViolation(PARSE_ERROR, f"the query is longer than {MAX_SQL_CHARS} characters")
    try:
        tokens = _DIALECT.tokenize(sql)
    except (SqlglotError, RecursionError, ValueError) as exc:
        raise PolicyViolation(PARSE_ERROR, "the query could not be parsed") from exc
    statements: list[list] = [[]]
    for token in tokens:
        if token.token_type == TokenType.SEMICOLON:
            statements.append([])
        else:
            statements[-1].append(token)
    statements = [s for s in statements if s]
    if not statements:
        raise PolicyViolation(PARSE_ERROR, "the query is empty")
    if len(statements) > 1:
        raise PolicyViolation(MULTIPLE_STATEMENTS, "send exactly one statement")
    # Decided on tokens so that statements sqlglot cannot parse (LOAD, CALL, ...) are refused
    # before the parser falls back to a raw Command.
    if statements[0][0].token_type not in (TokenType.SELECT, TokenType.WITH, TokenType.FROM):
        raise PolicyViolation(NOT_SELECT, "only a plain SELECT is allowed")
    try:
        trees = [
            t
            for t in _DIALECT.parser().parse(tokens, sql)  # the tokens checked above
            if t is not None and not isinstance(t, exp.Semicolon)  # a comment after the ";"
        ]
    except (SqlglotError, RecursionError, ValueError) as exc:
        raise PolicyViolation(PARSE_ERROR, "the query could not be parsed") from exc
    if len(trees) != 1:
        raise PolicyViolation(MULTIPLE_STATEMENTS, "send exactly one statement")
    tree = trees[0]
    if isinstance(tree, exp.SetOperation):
        raise PolicyViolation(FORBIDDEN_CONSTRUCT, "UNION, INTERSECT and EXCEPT are not allowed")
    if not isinstance(tree, exp.Select):
        raise PolicyViolation(NOT_SELECT, "only a plain SELECT is allowed")
    count = 0
    for node in tree.walk():
        count += 1
        if count > MAX_NODES:
            raise PolicyViolation(PARSE_ERROR, "the query is too large")
        # Comments would be copied into the generated SQL; nothing in them is needed.
        node.comments = None
    return tree
