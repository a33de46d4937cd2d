"""Benchmark: the dataset publication pipeline against a no-processing floor and Presidio.

    .venv/bin/python bench/publish.py [--rows 1000000] [--quick] [--chunk-rows 200000] [--repeat 3]

Generates a realistic social-insurance CSV (14 columns: credit code, company, name, resident
ID, gender, birth date, mobile, bank card, email, address, contribution base, months, enrolment
date, update time; all identifiers with valid check characters) and measures, each in its own
subprocess so that peak RSS (``getrusage(RUSAGE_CHILDREN)``) is that run's alone:

1. the floor: pandas (pyarrow engine) reads the CSV and writes Parquet, no processing;
2. the full pipeline: detection, desensitization, k-anonymity, quality, Parquet write;
3. Microsoft Presidio's analyzer, regex recognizers only (blank spaCy pipeline, no model
   download), on a sample of rows rendered as text; if it is not installed, the reference
   figure of ~1,200 rows/s from the issue is shown instead, marked as such.

``--quick`` runs 100,000 rows. ``--repeat N`` runs the floor and both pipeline variants N
times, interleaved (floor, full, masked, floor, ...) so that they see the same machine, and
reports each one's median wall and CPU time (and the largest peak RSS): on 2 shared cores one
run's CPU time moves by 10-20%. Figures go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from market.idcodes import USCC_ALPHABET  # noqa: E402

PRESIDIO_REFERENCE_ROWS_S = 1200

_SURNAMES = list(
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
)
_GIVEN = list(
    "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀英华慧巧美霞平刚桂兰玉萍红梅鑫宇浩然子轩梓涵一诺欣怡"
)
_DISTRICTS = {
    "310101": "黄浦区", "310104": "徐汇区", "310105": "长宁区", "310106": "静安区",
    "310107": "普陀区", "310109": "虹口区", "310110": "杨浦区", "310112": "闵行区",
    "310113": "宝山区", "310114": "嘉定区", "310115": "浦东新区", "310116": "金山区",
    "310117": "松江区", "310118": "青浦区", "310120": "奉贤区", "310151": "崇明区",
}  # fmt: skip
_ROADS = ["张江路", "世纪大道", "南京西路", "淮海中路", "四平路", "漕溪北路", "长寿路", "曹杨路",
          "江场路", "共和新路", "莘庄路", "沪太路", "博乐路", "人民北路", "中山路", "金海路"]  # fmt: skip
_COMPANY_WORDS = ["科技", "信息", "贸易", "实业", "建设", "物流", "餐饮", "医药", "电子", "咨询",
                  "文化", "环保", "机械", "服饰", "食品", "能源"]  # fmt: skip
_DOMAINS = ["qq.com", "163.com", "126.com", "sina.com", "gmail.com", "outlook.com"]

_RID_W = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2])
_USCC_W = np.array([1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28])


def _fixed(mat: np.ndarray) -> pa.Array:
    """A string array from an (n, w) matrix of ASCII bytes."""
    n, w = mat.shape
    offsets = pa.py_buffer((np.arange(n + 1, dtype=np.int32) * w).tobytes())
    return pa.Array.from_buffers(
        pa.string(), n, [None, offsets, pa.py_buffer(np.ascontiguousarray(mat).tobytes())]
    )


def _digits(rng: np.random.Generator, n: int, w: int) -> np.ndarray:
    return rng.integers(0, 10, size=(n, w), dtype=np.int64)


def _num(values: np.ndarray, width: int) -> pa.Array:
    return pc.utf8_lpad(pa.array(values).cast(pa.string()), width, "0")


def _pick(rng: np.random.Generator, words: list[str], n: int) -> pa.Array:
    return pa.array(np.array(words, dtype=object)[rng.integers(0, len(words), n)], pa.string())


def credit_codes(rng: np.random.Generator, n: int) -> pa.Array:
    alpha = np.frombuffer(USCC_ALPHABET.encode(), dtype=np.uint8)
    vals = np.empty((n, 17), dtype=np.int64)
    vals[:, 0], vals[:, 1] = 9, 1
    region = np.array([list(map(int, r)) for r in _DISTRICTS])[rng.integers(0, len(_DISTRICTS), n)]
    vals[:, 2:8] = region
    vals[:, 8:17] = rng.integers(0, 31, size=(n, 9))
    check = (31 - (vals @ _USCC_W) % 31) % 31
    return _fixed(np.concatenate([alpha[vals], alpha[check][:, None]], axis=1))


def resident_ids(rng: np.random.Generator, n: int) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    region = np.array([list(map(int, r)) for r in _DISTRICTS])[rng.integers(0, len(_DISTRICTS), n)]
    born = np.datetime64("1955-01-01") + rng.integers(0, 50 * 365, n).astype("timedelta64[D]")
    ymd = np.array([s.replace("-", "") for s in born.astype(str)])
    date_digits = np.frombuffer(ymd.astype("S8").tobytes(), dtype=np.uint8).reshape(n, 8) - 48
    seq = _digits(rng, n, 3)
    body = np.concatenate([region, date_digits, seq], axis=1)
    check = np.frombuffer(b"10X98765432", dtype=np.uint8)[(body @ _RID_W) % 11]
    mat = np.concatenate([(body + 48).astype(np.uint8), check[:, None]], axis=1)
    return _fixed(mat), born, seq[:, 2] % 2 == 1


def bank_cards(rng: np.random.Generator, n: int) -> pa.Array:
    body = np.concatenate([np.tile([6, 2, 2, 2, 0, 2], (n, 1)), _digits(rng, n, 12)], axis=1)
    # Luhn: the check digit is appended on the right, so doubling starts at the rightmost body digit.
    doubled = np.arange(18)[::-1] % 2 == 0
    dd = body[:, doubled] * 2
    total = body[:, ~doubled].sum(1) + np.where(dd > 9, dd - 9, dd).sum(1)
    check = (10 - total % 10) % 10
    return _fixed((np.concatenate([body, check[:, None]], axis=1) + 48).astype(np.uint8))


def generate(path: Path, rows: int, seed: int = 7, batch: int = 500_000) -> None:
    rng = np.random.default_rng(seed)
    companies = max(1000, rows // 20)
    company_codes = credit_codes(rng, companies)
    company_names = pc.binary_join_element_wise(
        "上海",
        _pick(rng, _COMPANY_WORDS, companies),
        _pick(rng, _COMPANY_WORDS, companies),
        _num(np.arange(companies), 1),
        "有限公司",
        "",
    )
    with pcsv.CSVWriter(str(path), _schema()) as writer:
        done = 0
        while done < rows:
            n = min(batch, rows - done)
            writer.write_table(_batch(rng, n, company_codes, company_names))
            done += n


def _schema() -> pa.Schema:
    return pa.schema([(name, pa.string()) for name in (
        "统一社会信用代码", "单位名称", "姓名", "身份证号", "性别", "出生日期", "手机号", "银行卡号",
        "电子邮箱", "住址", "缴费基数", "缴费月数", "参保日期", "更新时间")])  # fmt: skip


def _batch(rng, n, company_codes, company_names) -> pa.Table:  # noqa: ANN001
    which = pa.array(rng.integers(0, len(company_codes), n))
    given = pc.binary_join_element_wise(
        _pick(rng, _GIVEN, n),
        pc.if_else(pa.array(rng.random(n) < 0.7), _pick(rng, _GIVEN, n), ""),
        "",
    )
    names = pc.binary_join_element_wise(_pick(rng, _SURNAMES, n), given, "")
    rids, born, male = resident_ids(rng, n)
    prefixes = np.array(["138", "139", "150", "151", "186", "187", "135", "177"], dtype=object)
    mobiles = pc.binary_join_element_wise(
        pa.array(prefixes[rng.integers(0, len(prefixes), n)], pa.string()),
        _num(rng.integers(0, 10**8, n), 8),
        "",
    )
    letters = np.frombuffer(b"abcdefghijklmnopqrstuvwxyz", dtype=np.uint8)
    emails = pc.binary_join_element_wise(
        _fixed(letters[rng.integers(0, 26, (n, 6))]),
        _num(rng.integers(0, 1000, n), 3),
        "@",
        _pick(rng, _DOMAINS, n),
        "",
    )
    addresses = pc.binary_join_element_wise(
        "上海市",
        _pick(rng, list(_DISTRICTS.values()), n),
        _pick(rng, _ROADS, n),
        _num(rng.integers(1, 2000, n), 1),
        "号",
        _num(rng.integers(1, 40, n), 1),
        _num(rng.integers(1, 30, n), 2),
        "室",
        "",
    )
    base = _num(rng.integers(300_000, 3_500_000, n), 3)
    base = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(base, 0, -2), pc.utf8_slice_codeunits(base, -2), "."
    )
    enrolled = np.datetime64("2000-01-01") + rng.integers(0, 9000, n).astype("timedelta64[D]")
    updated = np.datetime64("2025-06-01T00:00:00") + rng.integers(0, 86400 * 30, n).astype(
        "timedelta64[s]"
    )
    return pa.table(
        [
            pc.take(company_codes, which),
            pc.take(company_names, which),
            names,
            rids,
            pa.array(np.where(male, "男", "女")),
            pa.array(born.astype(str)),
            mobiles,
            bank_cards(rng, n),
            emails,
            addresses,
            base,
            pa.array(rng.integers(1, 361, n)).cast(pa.string()),
            pa.array(enrolled.astype(str)),
            pa.array(np.char.replace(updated.astype(str), "T", " ")),
        ],
        schema=_schema(),
    )


# ---------------------------------------------------------------------------- runs


def _floor(csv_path: str, out: str) -> dict:
    import pandas as pd

    df = pd.read_csv(csv_path, engine="pyarrow", dtype_backend="pyarrow")
    df.to_parquet(out, index=False)
    return {"rows": len(df)}


#: Identifier columns that the "masked" variant masks instead of pseudonymizing, to show what
#: the keyed HMAC costs.
_IDENTIFIERS = ("统一社会信用代码", "身份证号", "手机号", "银行卡号", "电子邮箱")


def _pipeline(csv_path: str, out: str, chunk_rows: int, variant: str = "full") -> dict:
    import datetime as dt

    from market.pipeline import run_pipeline

    masked = variant == "masked"
    report = run_pipeline(
        csv_path,
        filename="social_insurance.csv",
        out_path=out,
        key=b"bench-key-0123456789",
        entity_key=None if masked else "统一社会信用代码",
        update_frequency="monthly",
        key_unique=False,
        overrides=dict.fromkeys(_IDENTIFIERS, "masked") if masked else None,
        chunk_rows=chunk_rows,
        now=dt.datetime(2025, 7, 1),
    )
    return {
        "rows": report.row_count,
        "k": report.k_anonymity,
        "quality": report.quality["score"],
        "treatments": {c.name: c.treatment for c in report.columns},
    }


def _presidio(csv_path: str, rows: int) -> dict:
    import shutil

    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine
    from presidio_analyzer.nlp_engine import SpacyNlpEngine

    # Presidio validates emails with tldextract, which would fetch the public suffix list from
    # the network; use the snapshot bundled with the package instead.
    tldextract.tldextract.TLD_EXTRACTOR = tldextract.TLDExtract(suffix_list_urls=())
    model_dir = tempfile.mkdtemp(prefix="blank-spacy-")
    spacy.blank("en").to_disk(model_dir)
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model_dir}])
    analyzer = AnalyzerEngine(nlp_engine=engine, supported_languages=["en"])
    reader = pcsv.open_csv(csv_path, read_options=pcsv.ReadOptions(block_size=1 << 22))
    table = pa.Table.from_batches([reader.read_next_batch()]).slice(0, rows)
    lines = [",".join(str(v) for v in row.values()) for row in table.to_pylist()]
    analyzer.analyze(text=lines[0], language="en")  # warm-up: recognizers load lazily
    start = time.perf_counter()
    found = 0
    for line in lines:
        found += len(analyzer.analyze(text=line, language="en"))
    seconds = time.perf_counter() - start
    shutil.rmtree(model_dir, ignore_errors=True)
    return {"rows": len(lines), "seconds": seconds, "entities": found}


def _child(kind: str, args: list[str]) -> None:
    start = time.perf_counter()
    if kind == "floor":
        out = _floor(args[0], args[1])
    elif kind == "pipeline":
        out = _pipeline(args[0], args[1], int(args[2]), *args[3:])
    else:
        out = _presidio(args[0], int(args[1]))
    out.setdefault("seconds", time.perf_counter() - start)
    print(json.dumps(out, ensure_ascii=False))


def _measure(kind: str, *args: str) -> dict:
    """Run one measurement in a wrapper process whose only child is the measured run, so that
    the wrapper's ``getrusage(RUSAGE_CHILDREN).ru_maxrss`` is that run's peak RSS alone."""
    proc = subprocess.run(
        [sys.executable, __file__, "--wrap", kind, *args], capture_output=True, text=True
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        lines = proc.stderr.strip().splitlines()
        return {"error": lines[-1] if lines else "failed"}
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _median(results: list[dict]) -> dict:
    """One measurement's runs as one: median wall and CPU time, largest peak RSS; the first
    error if any run failed."""
    failed = [r for r in results if "error" in r]
    if failed:
        return failed[0]
    out = dict(results[0])
    for key in ("seconds", "cpu_seconds"):
        out[key] = statistics.median(r[key] for r in results)
    out["peak_rss_mb"] = max(r["peak_rss_mb"] for r in results)
    out["cpu_runs"] = [round(r["cpu_seconds"], 2) for r in results]
    return out


def _wrap(kind: str, args: list[str]) -> None:
    proc = subprocess.run(
        [sys.executable, __file__, "--child", kind, *args], capture_output=True, text=True
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        sys.exit(1)
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    out["peak_rss_mb"] = usage.ru_maxrss / 1024
    out["cpu_seconds"] = usage.ru_utime + usage.ru_stime
    print(json.dumps(out, ensure_ascii=False))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--quick", action="store_true", help="100,000 rows")
    parser.add_argument("--chunk-rows", type=int, default=200_000)
    parser.add_argument("--presidio-rows", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=1, help="runs of each, interleaved")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    parser.add_argument("--wrap", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child[0], args.child[1:])
        return
    if args.wrap:
        _wrap(args.wrap[0], args.wrap[1:])
        return

    from rich.console import Console
    from rich.table import Table

    rows = 100_000 if args.quick else args.rows
    console = Console(width=150)
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        csv_path = Path(tmp) / "social_insurance.csv"
        t0 = time.perf_counter()
        generate(csv_path, rows)
        size_mb = csv_path.stat().st_size / 1e6
        console.print(
            f"generated {rows:,} rows, {size_mb:,.0f} MB in {time.perf_counter() - t0:.1f} s"
        )
        presidio = _measure("presidio", str(csv_path), str(min(args.presidio_rows, rows)))
        out = str(Path(tmp) / "out.parquet")
        runs: dict[str, list[dict]] = {"floor": [], "full": [], "masked": []}
        for _ in range(max(1, args.repeat)):
            runs["floor"].append(_measure("floor", str(csv_path), str(Path(tmp) / "floor.parquet")))
            runs["full"].append(_measure("pipeline", str(csv_path), out, str(args.chunk_rows)))
            runs["masked"].append(
                _measure("pipeline", str(csv_path), out, str(args.chunk_rows), "masked")
            )
        floor, pipe, masked = (_median(runs[k]) for k in ("floor", "full", "masked"))

    n = max(1, args.repeat)
    title = f"Publication pipeline, {rows:,} rows ({size_mb:,.0f} MB CSV), 2 cores"
    table = Table(title=title + (f", median of {n} interleaved runs" if n > 1 else ""))
    for col in ("run", "wall s", "CPU s", "rows/s", "peak RSS MB", "wall vs floor", "CPU vs floor"):
        table.add_column(col, justify="left" if col == "run" else "right")

    def add(name: str, res: dict, ratio: bool = True) -> None:
        if "error" in res:
            table.add_row(name, "-", "-", "-", "-", res["error"][:60], "")
            return
        vs = f"{res['seconds'] / floor['seconds']:.2f}x" if ratio and "seconds" in floor else ""
        cpu_vs = (
            f"{res['cpu_seconds'] / floor['cpu_seconds']:.2f}x"
            if ratio and "cpu_seconds" in floor
            else ""
        )
        table.add_row(
            name,
            f"{res['seconds']:.2f}",
            f"{res['cpu_seconds']:.2f}",
            f"{res['rows'] / res['seconds']:,.0f}",
            f"{res['peak_rss_mb']:,.0f}",
            vs,
            cpu_vs,
        )

    add("floor: pandas read_csv(engine=pyarrow) + to_parquet", floor)
    add("pipeline, full (5 identifier columns pseudonymized)", pipe)
    add("pipeline, identifiers masked instead (no HMAC)", masked)
    if "error" in presidio:
        table.add_row(
            "Presidio analyzer (reference figure from the issue, not run)",
            "-", "-", f"~{PRESIDIO_REFERENCE_ROWS_S:,}", "-", "", "",
        )  # fmt: skip
    else:
        add(
            f"Presidio analyzer, regex recognizers, {presidio['rows']:,}-row sample",
            presidio,
            False,
        )
    console.print(table)
    if n > 1:
        for name, res in (("floor", floor), ("full", pipe), ("masked", masked)):
            if "cpu_runs" in res:
                console.print(f"CPU s per run, {name}: {res['cpu_runs']}")
    if "quality" in pipe:
        console.print(f"pipeline: quality {pipe['quality']}, k-anonymity {pipe['k']}")
        console.print(f"treatments: {pipe['treatments']}")
    if "error" in presidio:
        console.print(f"presidio not run: {presidio['error']}")


if __name__ == "__main__":
    main()
