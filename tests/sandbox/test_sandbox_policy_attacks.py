"""The policy refuses every attack class with its stable rule code (no engine involved)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox import PolicyViolation, check
from sandbox.errors import RULES

# (attack, sql, rule). `loans` is conditional (aggregates only), `firms` is open.
ATTACKS = [
    # statements other than one plain SELECT
    ("parse error", "SELECT (1 FROM loans", "parse_error"),
    ("empty", "  ;  ", "parse_error"),
    ("two statements", "SELECT COUNT(*) FROM loans; SELECT 2", "multiple_statements"),
    ("piggyback DDL", "SELECT COUNT(*) FROM loans; DROP TABLE loans", "multiple_statements"),
    ("COPY out", "COPY loans TO '/tmp/leak.csv'", "not_select"),
    ("COPY in", "COPY loans FROM '/etc/passwd'", "not_select"),
    ("ATTACH file", "ATTACH '/tmp/x.db' AS x", "not_select"),
    ("ATTACH memory", "ATTACH ':memory:' AS m", "not_select"),
    ("INSTALL", "INSTALL httpfs", "not_select"),
    ("LOAD", "LOAD httpfs", "not_select"),
    ("SET", "SET enable_external_access = true", "not_select"),
    ("SET VARIABLE", "SET VARIABLE x = 1", "not_select"),
    ("PRAGMA", "PRAGMA database_list", "not_select"),
    ("EXPORT", "EXPORT DATABASE '/tmp/out'", "not_select"),
    ("CALL", "CALL pragma_version()", "not_select"),
    ("CREATE", "CREATE TABLE t AS SELECT 1", "not_select"),
    ("INSERT", "INSERT INTO loans VALUES (1)", "not_select"),
    ("DESCRIBE", "DESCRIBE loans", "not_select"),
    ("SUMMARIZE", "SUMMARIZE loans", "not_select"),
    ("PIVOT statement", "PIVOT loans ON district USING SUM(amount)", "not_select"),
    ("SELECT INTO", "SELECT COUNT(*) INTO t FROM loans", "not_select"),
    ("UNION", "SELECT COUNT(*) FROM loans UNION SELECT COUNT(*) FROM loans", "forbidden_construct"),
    # files and table functions
    ("read_csv", "SELECT * FROM read_csv('/etc/passwd')", "forbidden_table"),
    ("read_parquet", "SELECT COUNT(*) FROM read_parquet('/data/loans.parquet')", "forbidden_table"),
    ("read_text", "SELECT * FROM read_text('/etc/hostname')", "forbidden_table"),
    ("path as table", "SELECT * FROM '/etc/passwd'", "forbidden_table"),
    ("glob", "SELECT * FROM glob('/*')", "forbidden_table"),
    ("range", "SELECT COUNT(*) FROM range(1000000000)", "forbidden_table"),
    ("query()", "SELECT * FROM query('SELECT * FROM loans')", "forbidden_table"),
    ("query_table()", "SELECT * FROM query_table('loans')", "forbidden_table"),
    ("join a table function", "SELECT COUNT(*) FROM loans, range(10)", "forbidden_table"),
    ("read_csv in SELECT", "SELECT read_csv('/etc/passwd') FROM firms", "forbidden_function"),
    ("query() in SELECT", "SELECT query('SELECT 1') FROM firms", "forbidden_function"),
    # system catalogues
    ("duckdb_settings()", "SELECT * FROM duckdb_settings()", "forbidden_table"),
    ("duckdb_tables", "SELECT * FROM duckdb_tables", "forbidden_table"),
    ("information_schema", "SELECT * FROM information_schema.tables", "forbidden_table"),
    ("pg_catalog", "SELECT * FROM pg_catalog.pg_class", "forbidden_table"),
    ("sqlite_master", "SELECT * FROM sqlite_master", "forbidden_table"),
    ("qualified licensed", "SELECT COUNT(*) FROM main.loans", "forbidden_table"),
    ("unlicensed table", "SELECT COUNT(*) FROM salaries", "not_licensed"),
    # functions outside the allowlist
    ("getvariable", "SELECT getvariable('x') FROM firms", "forbidden_function"),
    ("current_setting", "SELECT current_setting('threads') FROM firms", "forbidden_function"),
    ("version", "SELECT version() FROM firms", "forbidden_function"),
    ("random", "SELECT random() FROM firms", "forbidden_function"),
    ("method call", "SELECT name.upper() FROM firms", "forbidden_construct"),
    ("MIN leak", "SELECT district, MIN(amount) FROM loans GROUP BY district", "forbidden_function"),
    ("MAX leak", "SELECT MAX(amount) FROM loans", "forbidden_function"),
    ("median", "SELECT MEDIAN(amount) FROM loans", "forbidden_function"),
    ("quantile", "SELECT QUANTILE_CONT(amount, 0.99) FROM loans", "forbidden_function"),
    ("mode", "SELECT MODE(amount) FROM loans", "forbidden_function"),
    ("list", "SELECT district, LIST(amount) FROM loans GROUP BY district", "forbidden_function"),
    ("string_agg", "SELECT STRING_AGG(id_no, ',') FROM loans", "forbidden_function"),
    ("string_agg dim", "SELECT STRING_AGG(district, ',') FROM loans", "forbidden_function"),
    ("histogram", "SELECT HISTOGRAM(amount) FROM loans", "forbidden_function"),
    ("arg_max", "SELECT ARG_MAX(district, amount) FROM loans", "forbidden_function"),
    ("first", "SELECT FIRST(amount) FROM loans", "forbidden_function"),
    ("any_value", "SELECT ANY_VALUE(amount) FROM loans", "forbidden_function"),
    ("stddev", "SELECT STDDEV(amount) FROM loans", "forbidden_function"),
    # constructs
    ("window", "SELECT SUM(amount) OVER (PARTITION BY district) FROM loans", "forbidden_construct"),
    ("row_number", "SELECT district, ROW_NUMBER() OVER () FROM firms", "forbidden_construct"),
    ("qualify", "SELECT name FROM firms QUALIFY ROW_NUMBER() OVER () = 1", "forbidden_construct"),
    ("scalar subquery", "SELECT (SELECT COUNT(*) FROM loans) FROM firms", "forbidden_construct"),
    (
        "IN subquery",
        "SELECT COUNT(*) FROM loans WHERE district IN (SELECT district FROM firms)",
        "forbidden_construct",
    ),
    (
        "EXISTS",
        "SELECT COUNT(*) FROM loans WHERE EXISTS (SELECT 1 FROM firms)",
        "forbidden_construct",
    ),
    (
        "rollup",
        "SELECT district, COUNT(*) FROM loans GROUP BY ROLLUP (district)",
        "forbidden_construct",
    ),
    (
        "cube",
        "SELECT district, COUNT(*) FROM loans GROUP BY CUBE (district)",
        "forbidden_construct",
    ),
    (
        "grouping sets",
        "SELECT district, COUNT(*) FROM loans GROUP BY GROUPING SETS ((district), ())",
        "forbidden_construct",
    ),
    (
        "recursive CTE",
        "WITH RECURSIVE r AS (SELECT 1 AS n) SELECT COUNT(*) FROM loans",
        "forbidden_construct",
    ),
    (
        "aggregating CTE",
        "WITH c AS (SELECT district, COUNT(*) AS n FROM loans GROUP BY district) "
        "SELECT COUNT(*) FROM c",
        "forbidden_construct",
    ),
    (
        "PIVOT in FROM",
        "SELECT * FROM firms PIVOT (SUM(capital) FOR district IN ('a'))",
        "forbidden_construct",
    ),
    ("sample", "SELECT COUNT(*) FROM loans USING SAMPLE 10%", "forbidden_construct"),
    (
        "FILTER clause",
        "SELECT COUNT(*) FILTER (WHERE amount > 5) FROM loans",
        "forbidden_construct",
    ),
    (
        "CASE in aggregate",
        "SELECT SUM(CASE WHEN id_no = 'x' THEN amount END) FROM loans",
        "identifier_filter",
    ),
    ("expression in SUM", "SELECT SUM(amount * 2) FROM loans", "forbidden_construct"),
    ("DISTINCT rows", "SELECT DISTINCT district FROM loans", "forbidden_construct"),
    ("placeholder", "SELECT COUNT(*) FROM loans WHERE district = $1", "forbidden_construct"),
    ("reserved alias", "SELECT COUNT(*) AS __sbx_k FROM loans", "forbidden_construct"),
    (
        "shadowing alias",
        "SELECT industry AS district, COUNT(*) FROM loans GROUP BY 1",
        "forbidden_construct",
    ),
    # row-level output from conditional data
    ("bare row", "SELECT district, amount FROM loans", "not_aggregated"),
    ("measure grouped", "SELECT amount, COUNT(*) FROM loans GROUP BY amount", "not_dimension"),
    ("measure bucketed", "SELECT amount // 1000, COUNT(*) FROM loans GROUP BY 1", "not_dimension"),
    (
        "not in GROUP BY",
        "SELECT district, industry, COUNT(*) FROM loans GROUP BY district",
        "not_aggregated",
    ),
    ("arith on aggregates", "SELECT SUM(amount) / COUNT(*) FROM loans", "not_aggregated"),
    ("other column grouped", "SELECT note, COUNT(*) FROM loans GROUP BY note", "not_dimension"),
    # identifiers
    ("identifier output", "SELECT id_no FROM loans", "identifier_output"),
    ("identifier group", "SELECT id_no, COUNT(*) FROM loans GROUP BY id_no", "identifier_output"),
    ("entity key group", "SELECT ek, SUM(amount) FROM loans GROUP BY ek", "identifier_output"),
    (
        "identifier transform",
        "SELECT LENGTH(id_no), COUNT(*) FROM loans GROUP BY 1",
        "identifier_output",
    ),
    (
        "identifier filter",
        "SELECT COUNT(*) FROM loans WHERE id_no = '310115199000000001'",
        "identifier_filter",
    ),
    ("entity key filter", "SELECT SUM(amount) FROM loans WHERE ek = 'abc'", "identifier_filter"),
    ("identifier LIKE", "SELECT COUNT(*) FROM loans WHERE id_no LIKE '3101%'", "identifier_filter"),
    ("open identifier output", "SELECT uscc FROM firms", "identifier_output"),
    (
        "open identifier filter",
        "SELECT name FROM firms WHERE uscc = '91310000MA00000001'",
        "identifier_filter",
    ),
    ("open entity key output", "SELECT fk, name FROM firms", "identifier_output"),
    ("open MIN of identifier", "SELECT MIN(uscc) FROM firms", "identifier_output"),
    (
        "identifier in HAVING",
        "SELECT district FROM firms GROUP BY district HAVING MAX(uscc) > 'a'",
        "identifier_filter",
    ),
    ("identifier ORDER BY", "SELECT name FROM firms ORDER BY uscc", "identifier_output"),
    # differencing: OR / NOT
    (
        "OR",
        "SELECT COUNT(*) FROM loans WHERE district = 'Xuhui' OR district = 'Rare'",
        "forbidden_operator",
    ),
    ("NOT", "SELECT COUNT(*) FROM loans WHERE NOT district = 'Xuhui'", "forbidden_operator"),
    ("NOT IN", "SELECT COUNT(*) FROM loans WHERE district NOT IN ('Xuhui')", "forbidden_operator"),
    (
        "NOT BETWEEN",
        "SELECT COUNT(*) FROM loans WHERE amount NOT BETWEEN 1 AND 5",
        "forbidden_operator",
    ),
    ("LIKE", "SELECT COUNT(*) FROM loans WHERE district LIKE 'X%'", "forbidden_operator"),
    (
        "column vs column",
        "SELECT COUNT(*) FROM loans WHERE district = industry",
        "forbidden_operator",
    ),
    ("filter on measure", "SELECT COUNT(*) FROM loans WHERE amount > 1000", "not_dimension"),
    (
        "HAVING OR",
        "SELECT district, COUNT(*) FROM loans GROUP BY district HAVING COUNT(*) > 1 OR COUNT(*) < 5",
        "forbidden_operator",
    ),
    # joins
    ("self-join", "SELECT COUNT(*) FROM loans a JOIN loans b ON a.ek = b.ek", "forbidden_join"),
    (
        "self-join via CTE",
        "WITH x AS (SELECT ek, district FROM loans) SELECT COUNT(*) FROM loans JOIN x ON loans.ek = x.ek",
        "forbidden_join",
    ),
    ("cross join", "SELECT COUNT(*) FROM loans CROSS JOIN firms", "forbidden_join"),
    ("comma join", "SELECT COUNT(*) FROM loans, firms WHERE loans.ek = firms.fk", "forbidden_join"),
    (
        "left join",
        "SELECT COUNT(*) FROM loans LEFT JOIN firms ON loans.ek = firms.fk",
        "forbidden_join",
    ),
    (
        "join on non-key",
        "SELECT COUNT(*) FROM loans JOIN firms ON loans.district = firms.district",
        "forbidden_join",
    ),
    (
        "join with extra term",
        "SELECT COUNT(*) FROM loans JOIN firms ON loans.ek = firms.fk AND firms.capital > 5",
        "forbidden_join",
    ),
    ("natural join", "SELECT COUNT(*) FROM loans NATURAL JOIN firms", "forbidden_join"),
    (
        "asof join",
        "SELECT COUNT(*) FROM loans ASOF JOIN firms ON loans.ek >= firms.fk",
        "forbidden_join",
    ),
    ("lateral", "SELECT COUNT(*) FROM loans, LATERAL (SELECT 1)", "forbidden_join"),
    # columns and stars
    ("unlicensed column", "SELECT secret, COUNT(*) FROM loans GROUP BY secret", "not_licensed"),
    ("unlicensed in open", "SELECT secret FROM firms", "not_licensed"),
    ("star conditional", "SELECT * FROM loans", "star_expansion"),
    ("t.* conditional", "SELECT loans.* FROM loans", "star_expansion"),
    ("star in CTE", "WITH x AS (SELECT * FROM loans) SELECT COUNT(*) FROM x", "star_expansion"),
    ("COLUMNS()", "SELECT COLUMNS('.*') FROM firms", "star_expansion"),
    ("EXCLUDE", "SELECT * EXCLUDE (name) FROM firms", "star_expansion"),
    ("REPLACE", "SELECT * REPLACE (capital + 1 AS capital) FROM firms", "star_expansion"),
    ("SUM without bounds", "SELECT SUM(note) FROM loans", "unbounded_aggregate"),
    (
        "ambiguous",
        "SELECT COUNT(*) FROM loans JOIN firms ON loans.ek = firms.fk GROUP BY district",
        "ambiguous_column",
    ),
]


@pytest.mark.parametrize(("attack", "sql", "rule"), ATTACKS, ids=[a[0] for a in ATTACKS])
def test_attack_is_refused_with_rule(ctx, attack, sql, rule):
    with pytest.raises(PolicyViolation) as caught:
        check(sql, ctx)
    assert caught.value.rule == rule, (attack, caught.value.message)
    assert caught.value.rule in RULES


SECRET_LITERAL = "310115199000000001"


@pytest.mark.parametrize(
    "sql",
    [
        f"SELECT COUNT(*) FROM loans WHERE id_no = '{SECRET_LITERAL}'",
        f"SELECT COUNT(*) FROM loans WHERE district = '{SECRET_LITERAL}' OR district = 'x'",
        f"SELECT '{SECRET_LITERAL}' FROM loans",
        f"SELECT COUNT(*) FROM read_csv('{SECRET_LITERAL}')",
    ],
)
def test_messages_never_echo_literals(ctx, sql):
    with pytest.raises(PolicyViolation) as caught:
        check(sql, ctx)
    assert SECRET_LITERAL not in caught.value.message
    assert SECRET_LITERAL not in str(caught.value)


def test_oversized_and_deeply_nested_queries_are_parse_errors(ctx):
    with pytest.raises(PolicyViolation) as caught:
        check("SELECT COUNT(*) FROM loans WHERE district = '" + "a" * 30_000 + "'", ctx)
    assert caught.value.rule == "parse_error"
    nested = "SELECT COUNT(*) FROM loans WHERE district = " + "(" * 3000 + "'a'" + ")" * 3000
    with pytest.raises(PolicyViolation) as caught:
        check(nested, ctx)
    assert caught.value.rule == "parse_error"


def test_unknown_rule_code_cannot_be_raised():
    with pytest.raises(ValueError):
        PolicyViolation("made_up", "x")


MORE = [
    (
        "OR hidden in a comparison",
        "SELECT COUNT(*) FROM loans WHERE (district = 'a' OR industry = 'b') = TRUE",
        "forbidden_operator",
    ),
    (
        "cell via concatenation",
        "SELECT COUNT(*) FROM loans WHERE district || industry <> 'Xuhuitech'",
        "forbidden_operator",
    ),
    (
        "CASE across columns",
        "SELECT COUNT(*) FROM loans WHERE CASE WHEN district = 'a' THEN 1 WHEN industry = 'b' THEN 1 ELSE 0 END = 1",
        "forbidden_operator",
    ),
    (
        "identifier through a CTE",
        "WITH x AS (SELECT id_no AS i FROM loans) SELECT i, COUNT(*) FROM x GROUP BY i",
        "identifier_output",
    ),
    (
        "identifier filter in a CTE",
        "WITH x AS (SELECT district FROM loans WHERE id_no = '1') SELECT COUNT(*) FROM x",
        "identifier_filter",
    ),
    (
        "OR in a CTE",
        "WITH x AS (SELECT district FROM loans WHERE district = 'a' OR district = 'b') SELECT COUNT(*) FROM x",
        "forbidden_operator",
    ),
    (
        "expression in a CTE",
        "WITH x AS (SELECT amount * 2 AS a2 FROM loans) SELECT SUM(a2) FROM x",
        "forbidden_construct",
    ),
    (
        "escape string",
        "SELECT COUNT(*) FROM loans WHERE district = E'a\\'b'",
        "forbidden_construct",
    ),
    ("dollar string", "SELECT COUNT(*) FROM loans WHERE district = $$a$$", "forbidden_construct"),
]


@pytest.mark.parametrize(("attack", "sql", "rule"), MORE, ids=[a[0] for a in MORE])
def test_more_attacks(ctx, attack, sql, rule):
    with pytest.raises(PolicyViolation) as caught:
        check(sql, ctx)
    assert caught.value.rule == rule, (attack, caught.value.message)


SQL_WORDS = st.sampled_from(
    "SELECT FROM WHERE GROUP BY HAVING ORDER LIMIT WITH AS AND OR NOT IN ( ) , ; * = <> "
    "COUNT SUM AVG MIN read_csv query loans firms district amount id_no ek name capital "
    "JOIN ON 'x' 1 -- /* */ . \" UNION CASE WHEN THEN END OVER PIVOT".split()
)


@settings(max_examples=300, deadline=None)
@given(st.lists(SQL_WORDS, min_size=1, max_size=25))
def test_check_only_ever_raises_policy_violations(ctx, words):
    import sqlglot

    try:
        q = check(" ".join(words), ctx)
    except PolicyViolation as exc:
        assert exc.rule in RULES
    else:
        sqlglot.parse_one(q.engine_sql, read="duckdb")
