"""The Shanghai-pilot additions to the demo: the wide indicator tables of 科委, 规划资源 and 住建.

The 2020 pilot opened "300多个数据项" (over 300 data items) from eight departments to four
banks for inclusive finance. The three departments here publish annual indicator tables, the
way statistical returns look: a few descriptive columns, then each indicator for each of the
last three calendar years (``研发费用(万元)_2024``). Values are synthetic, drawn from the
population's size, industry and latent distress so that they correlate with the other tables;
no column holds personal data (only the enterprise's credit code, which is no person's).

Pure: numpy and pandas only. The table definitions are data (``SCIENCE``, ``LAND``,
``HOUSING``) so that another table is one more entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Literal

import numpy as np
import pandas as pd

Kind = Literal["count", "wan", "percent", "flag"]


@dataclass(frozen=True, slots=True)
class Indicator:
    """One annual indicator: ``per_worker`` scales it with headcount (counts and 万元)."""

    name: str
    kind: Kind
    per_worker: float = 0.0
    #: For ``percent``: the centre; for ``flag``: the chance of 是.
    centre: float = 0.0


@dataclass(frozen=True, slots=True)
class PilotTable:
    """A department's wide table: who appears, its fixed columns and its annual indicators."""

    key: str
    #: Industries (GB/T 4754 section names) whose firms appear with probability ``share``.
    industries: tuple[str, ...]
    share: float
    fixed: tuple[tuple[str, tuple[str, ...]], ...]
    indicators: tuple[Indicator, ...]


def _i(name: str, kind: Kind, per_worker: float = 0.0, centre: float = 0.0) -> Indicator:
    return Indicator(name, kind, per_worker, centre)


SCIENCE = PilotTable(
    key="science",
    industries=("信息传输、软件和信息技术服务业", "科学研究和技术服务业", "制造业"),
    share=0.55,
    fixed=(
        ("高新技术企业认定", ("是", "否")),
        ("科技型中小企业评价", ("入库", "未入库")),
        ("技术领域", ("电子信息", "生物与新医药", "新材料", "高技术服务", "先进制造与自动化",
                      "资源与环境")),
        ("研发机构级别", ("无", "区级", "市级")),
    ),
    indicators=(
        _i("研发费用(万元)", "wan", 1.8), _i("研发费用占营收比例(%)", "percent", centre=6.0),
        _i("研发人员数", "count", 0.25), _i("科技活动人员数", "count", 0.32),
        _i("本科及以上学历人数", "count", 0.45), _i("硕士学历人数", "count", 0.08),
        _i("博士学历人数", "count", 0.01), _i("发明专利申请数", "count", 0.05),
        _i("发明专利授权数", "count", 0.02), _i("实用新型专利授权数", "count", 0.04),
        _i("外观设计专利授权数", "count", 0.01), _i("软件著作权登记数", "count", 0.06),
        _i("技术合同登记数", "count", 0.02), _i("技术合同成交额(万元)", "wan", 0.9),
        _i("高新技术产品收入(万元)", "wan", 9.0), _i("技术服务收入(万元)", "wan", 2.5),
        _i("新产品销售收入(万元)", "wan", 4.0), _i("政府科技项目资助(万元)", "wan", 0.3),
        _i("研发费用加计扣除额(万元)", "wan", 1.2), _i("承担市级科技项目", "flag", centre=0.08),
        _i("参与标准制定", "flag", centre=0.05), _i("产学研合作", "flag", centre=0.15),
        _i("科技成果转化数", "count", 0.01), _i("研发设备原值(万元)", "wan", 0.8),
        _i("海外研发人员数", "count", 0.005), _i("知识产权质押融资额(万元)", "wan", 0.4),
        _i("创新券使用额(万元)", "wan", 0.05), _i("科技人员人均研发投入(万元)", "wan", 0.0),
    ),
)

LAND = PilotTable(
    key="natural_resources",
    industries=("制造业", "交通运输、仓储和邮政业", "建筑业", "批发和零售业"),
    share=0.45,
    fixed=(
        ("土地用途", ("工业用地", "仓储用地", "商服用地", "研发总部用地")),
        ("取得方式", ("出让", "租赁", "转让")),
        ("产业区块", ("104区块", "195区域", "198区域", "其他")),
        ("土地等级", ("一级", "二级", "三级", "四级", "五级")),
        ("是否设定抵押", ("是", "否")),
        ("出让年限(年)", ("20", "30", "50")),
    ),
    indicators=(
        _i("用地面积(平方米)", "count", 60.0), _i("建筑面积(平方米)", "count", 85.0),
        _i("容积率(%)", "percent", centre=120.0), _i("建筑密度(%)", "percent", centre=45.0),
        _i("绿地率(%)", "percent", centre=18.0), _i("亩均税收(万元/亩)", "wan", 0.0),
        _i("亩均产值(万元/亩)", "wan", 0.0), _i("单位用地能耗(吨标煤/亩)", "percent", centre=3.0),
        _i("地均就业人数(人/亩)", "percent", centre=20.0), _i("抵押金额(万元)", "wan", 3.0),
        _i("土地出让价款(万元)", "wan", 2.5), _i("闲置土地面积(平方米)", "count", 0.5),
        _i("存量工业用地盘活", "flag", centre=0.06), _i("土地绩效评价达标", "flag", centre=0.8),
        _i("规划许可证数", "count", 0.005), _i("不动产登记变更次数", "count", 0.003),
        _i("固定资产投资额(万元)", "wan", 1.5), _i("节约集约用地评价得分", "percent", centre=75.0),
        _i("违法用地查处次数", "count", 0.0005), _i("用地合同履约率(%)", "percent", centre=92.0),
        _i("厂房出租面积(平方米)", "count", 6.0), _i("厂房自用面积(平方米)", "count", 70.0),
        _i("土地使用税(万元)", "wan", 0.12), _i("房产税(万元)", "wan", 0.15),
        _i("标准厂房入驻", "flag", centre=0.3), _i("工业上楼", "flag", centre=0.05),
        _i("建设用地规划核验通过", "flag", centre=0.9), _i("土地复垦面积(平方米)", "count", 0.2),
    ),
)

HOUSING = PilotTable(
    key="housing_construction",
    industries=("建筑业", "租赁和商务服务业", "批发和零售业", "住宿和餐饮业",
                "文化、体育和娱乐业"),
    share=0.5,
    fixed=(
        ("资质类别", ("无", "施工总承包", "专业承包", "劳务分包", "房地产开发")),
        ("资质等级", ("无", "特级", "一级", "二级", "三级")),
        ("安全生产许可证", ("有效", "无")),
        ("房屋用途", ("办公", "厂房", "商铺", "仓库")),
        ("租赁备案", ("已备案", "未备案")),
        ("信用等级", ("AAA", "AA", "A", "B", "C")),
    ),
    indicators=(
        _i("在建工程项目数", "count", 0.01), _i("竣工工程项目数", "count", 0.01),
        _i("合同额(万元)", "wan", 6.0), _i("完成产值(万元)", "wan", 5.0),
        _i("中标金额(万元)", "wan", 3.5), _i("分包合同额(万元)", "wan", 1.0),
        _i("农民工工资专户发放额(万元)", "wan", 1.6), _i("工资保证金(万元)", "wan", 0.2),
        _i("注册建造师人数", "count", 0.04), _i("安全员人数", "count", 0.03),
        _i("质量安全事故次数", "count", 0.0004), _i("行政处罚次数", "count", 0.001),
        _i("不良行为记录数", "count", 0.002), _i("良好行为记录数", "count", 0.004),
        _i("租赁面积(平方米)", "count", 18.0), _i("月租金(元/平方米)", "percent", centre=95.0),
        _i("房屋租赁合同期限(月)", "percent", centre=36.0), _i("物业费(万元)", "wan", 0.05),
        _i("装修备案", "flag", centre=0.2), _i("绿色建筑项目", "flag", centre=0.1),
        _i("装配式建筑项目", "flag", centre=0.08), _i("信用评价得分", "percent", centre=80.0),
        _i("拖欠工程款投诉数", "count", 0.001), _i("履约保函金额(万元)", "wan", 0.6),
        _i("预售资金监管额(万元)", "wan", 0.4), _i("住房租赁企业备案", "flag", centre=0.03),
        _i("施工许可证数", "count", 0.006), _i("竣工验收备案数", "count", 0.006),
    ),
)

TABLES: tuple[PilotTable, ...] = (SCIENCE, LAND, HOUSING)


def annual_years(last_period: str, years: int = 3) -> tuple[int, ...]:
    """The last ``years`` complete calendar years before the window's last month."""
    end = int(last_period[:4]) - 1
    return tuple(range(end - years + 1, end + 1))


def _value(ind: Indicator, workers: np.ndarray, growth: np.ndarray, rng: np.random.Generator,
           year_index: int) -> list[Any]:
    n = len(workers)
    if ind.kind == "flag":
        return list(np.where(rng.random(n) < ind.centre, "是", "否").astype(object))
    if ind.kind == "percent":
        drawn = np.clip(rng.normal(ind.centre, ind.centre * 0.25 + 0.5, n), 0, None)
        return [Decimal(int(v)).scaleb(-2) for v in np.rint(drawn * 100)]
    scale = workers * growth ** year_index
    if ind.per_worker == 0.0:  # an intensity (per mu, per person): no headcount scaling
        scale = np.full(n, 1.0) * growth ** year_index
        drawn = rng.lognormal(np.log(40.0), 0.6, n) * scale
    else:
        drawn = ind.per_worker * scale * rng.lognormal(0, 0.35, n)
    if ind.kind == "count":
        return list(np.rint(drawn).astype(np.int64))
    return [Decimal(int(v)).scaleb(-2) for v in np.rint(drawn * 100)]  # 万元, two decimals


def table_frame(table: PilotTable, *, uscc: Sequence[str], district: Sequence[str],
                industry: Sequence[str], headcount: np.ndarray, distress: np.ndarray,
                years: Sequence[int], rng: np.random.Generator,
                entity_key: str, district_column: str, industry_column: str) -> pd.DataFrame:
    """One row per appearing enterprise (enterprise 0, the demo subject, always appears):
    the key, district and industry (as in the registry), the fixed columns, then every
    indicator for every year."""
    n = len(uscc)
    eligible = np.array([i in table.industries for i in industry])
    chosen = eligible & (rng.random(n) < table.share)
    chosen[0] = True
    rows = np.flatnonzero(chosen)
    workers = np.maximum(headcount[rows].astype(float), 1.0)
    data: dict[str, Any] = {
        entity_key: [uscc[k] for k in rows],
        district_column: [district[k] for k in rows],
        industry_column: [industry[k] for k in rows],
    }
    for name, choices in table.fixed:
        data[name] = [choices[j] for j in rng.integers(0, len(choices), len(rows))]
    # Firms in distress grow less (or shrink) from one year to the next.
    growth = 1.08 - 0.2 * distress[rows]
    for year_index, year in enumerate(years):
        for ind in table.indicators:
            data[f"{ind.name}_{year}"] = _value(ind, workers, growth, rng, year_index)
    return pd.DataFrame(data)
