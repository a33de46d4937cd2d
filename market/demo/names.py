"""Reference data for the Shanghai demo population: districts, roads, industries, word lists.

Plain constants, no randomness. Every string here is GBK-encodable, because the market
supervision table is written in GBK to exercise the upload pipeline's encoding detection.
Administrative division codes are the real GB/T 2260 codes of Shanghai's 16 districts; the
basic-level court codes (沪01xx) follow the same numbering. Roads are real road names in each
district; house numbers and rooms are invented by the generator.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class District:
    code: str  # GB/T 2260 six-digit administrative division code
    name: str
    abbr: str  # one-character abbreviation used in penalty document numbers
    weight: float  # share of registered SMEs, roughly: outer districts host most registrations
    roads: tuple[str, ...]

    @property
    def court_code(self) -> str:
        """The basic people's court code used in case numbers, e.g. 沪0115 for Pudong."""
        return "沪" + self.code[2:]


DISTRICTS: tuple[District, ...] = (
    District("310101", "黄浦区", "黄", 0.02,
             ("南京东路", "淮海中路", "西藏中路", "河南中路", "复兴东路", "中山南路", "陆家浜路")),
    District("310104", "徐汇区", "徐", 0.04,
             ("漕溪北路", "肇嘉浜路", "宜山路", "虹漕路", "田林路", "龙华中路", "桂平路")),
    District("310105", "长宁区", "长", 0.02,
             ("延安西路", "天山路", "仙霞路", "中山西路", "遵义路", "金钟路", "定西路")),
    District("310106", "静安区", "静", 0.04,
             ("南京西路", "江场西路", "共和新路", "汶水路", "延长中路", "万荣路", "康定路")),
    District("310107", "普陀区", "普", 0.03,
             ("真北路", "金沙江路", "武宁路", "曹杨路", "中山北路", "铜川路", "长寿路")),
    District("310109", "虹口区", "虹", 0.02,
             ("四川北路", "东大名路", "曲阳路", "广粤路", "天宝路", "海伦路", "吴淞路")),
    District("310110", "杨浦区", "杨", 0.03,
             ("国定路", "政通路", "长阳路", "军工路", "平凉路", "控江路", "黄兴路")),
    District("310112", "闵行区", "闵", 0.10,
             ("沪闵路", "七莘路", "虹梅南路", "剑川路", "都会路", "春中路", "紫星路")),
    District("310113", "宝山区", "宝", 0.07,
             ("友谊路", "长江西路", "蕴川路", "沪太路", "月罗路", "真华路", "富联路")),
    District("310114", "嘉定区", "嘉", 0.09,
             ("博乐路", "城北路", "沪宜公路", "墨玉路", "叶城路", "嘉松北路", "兴贤路")),
    District("310115", "浦东新区", "浦", 0.20,
             ("张江路", "世纪大道", "碧波路", "科苑路", "金科路", "川沙路", "康桥路", "龙阳路",
              "祖冲之路", "杨高北路")),
    District("310116", "金山区", "金", 0.04,
             ("卫零路", "龙皓路", "亭卫公路", "金山大道", "蒙山路", "杭州湾大道")),
    District("310117", "松江区", "松", 0.09,
             ("新松江路", "沪亭北路", "文诚路", "荣乐中路", "九新公路", "沪松公路", "人民北路")),
    District("310118", "青浦区", "青", 0.07,
             ("外青松公路", "崧泽大道", "汇金路", "城中北路", "嘉松中路", "诸光路")),
    District("310120", "奉贤区", "奉", 0.08,
             ("环城东路", "望园路", "金海公路", "航南公路", "解放东路", "沪杭公路")),
    District("310151", "崇明区", "崇", 0.06,
             ("八一路", "崇明大道", "东门路", "翠竹路", "北门路", "鳌山路")),
)


@dataclass(frozen=True, slots=True)
class Industry:
    """A GB/T 4754 industry section with the parameters the generator draws from.

    Figures are per insured employee per month and deliberately round: they make the tables
    plausible and correlated, they are not statistics.
    """

    name: str
    weight: float
    name_words: tuple[str, ...]  # the business word in a company name: 上海X{word}有限公司
    median_headcount: int
    tax_per_worker: int  # yuan of tax per employee per month
    kwh_per_worker: int
    water_per_worker: float  # tonnes
    wage: int  # yuan, the centre of the housing-fund contribution base
    env_risk: float  # relative chance of an environmental penalty
    violations: tuple[str, ...]


_GENERIC_VIOLATIONS = ("未按规定申领排污许可证", "危险废物贮存不规范")

INDUSTRIES: tuple[Industry, ...] = (
    Industry("制造业", 0.14,
             ("机械制造", "电子科技", "精密机械", "新材料", "塑料制品", "汽车零部件", "五金制品",
              "包装材料"),
             30, 2500, 900, 6.0, 9000, 1.0,
             ("超标排放大气污染物", "超标排放水污染物", "危险废物贮存不规范", "未批先建",
              "未验先投", "未按规定申领排污许可证")),
    Industry("批发和零售业", 0.22,
             ("贸易", "商贸", "供应链管理", "食品销售", "医疗器械销售", "国际贸易"),
             8, 1800, 150, 1.5, 8000, 0.05, _GENERIC_VIOLATIONS),
    Industry("信息传输、软件和信息技术服务业", 0.12,
             ("信息技术", "网络科技", "软件", "数据科技", "智能科技"),
             20, 3000, 200, 1.2, 18000, 0.0, _GENERIC_VIOLATIONS),
    Industry("科学研究和技术服务业", 0.10,
             ("生物科技", "检测技术", "工程技术", "环保科技", "医药科技"),
             15, 2600, 300, 2.5, 15000, 0.3,
             ("危险废物贮存不规范", "实验室废液未规范处置", "未验先投")),
    Industry("租赁和商务服务业", 0.14,
             ("企业管理咨询", "商务咨询", "广告", "人力资源", "会展服务"),
             10, 2000, 120, 1.2, 10000, 0.0, _GENERIC_VIOLATIONS),
    Industry("建筑业", 0.07,
             ("建设工程", "建筑装饰工程", "机电安装工程", "市政工程"),
             25, 2200, 250, 4.0, 9000, 0.7,
             ("扬尘污染防治措施不到位", "夜间施工噪声超标", "建筑垃圾未规范处置")),
    Industry("交通运输、仓储和邮政业", 0.06,
             ("物流", "货运代理", "仓储服务", "运输"),
             20, 1500, 350, 2.0, 8500, 0.3,
             ("非道路移动机械排放超标", "危险废物贮存不规范")),
    Industry("住宿和餐饮业", 0.06,
             ("餐饮管理", "酒店管理", "餐饮服务"),
             15, 900, 600, 12.0, 6500, 0.3,
             ("油烟污染物超标排放", "噪声超标")),
    Industry("居民服务、修理和其他服务业", 0.05,
             ("家政服务", "汽车维修", "清洁服务", "维修服务"),
             12, 700, 200, 3.0, 6500, 0.15,
             ("危险废物贮存不规范", "噪声超标")),
    Industry("文化、体育和娱乐业", 0.04,
             ("文化传播", "文化传媒", "体育发展", "影视制作"),
             8, 1600, 180, 1.5, 11000, 0.0, _GENERIC_VIOLATIONS),
)

# Trade-name (字号) syllables: two or three of them make a name like 鑫瑞 or 恒博达.
BRAND_CHARS: tuple[str, ...] = tuple(
    "华鑫恒瑞诚嘉汇博达信安宏泰兴润德宝丰盛康源景锦明新创卓东海浦申沪"
    "优联众合利凯晟昊骏睿越邦智科拓远誉豪通力祥和裕隆星晨翔鸿铭"
)

# Mobile number prefixes allocated to mainland carriers (1[3-9]x).
MOBILE_PREFIXES: tuple[str, ...] = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139",
    "150", "151", "152", "153", "155", "156", "157", "158", "159",
    "166", "173", "175", "176", "177", "178",
    "180", "181", "182", "183", "184", "185", "186", "187", "188", "189",
    "191", "195", "198", "199",
)

# Causes of action (案由), from the Supreme People's Court list, by which side the firm is on.
CAUSES_AS_DEFENDANT: tuple[str, ...] = (
    "买卖合同纠纷", "金融借款合同纠纷", "劳动争议", "房屋租赁合同纠纷", "追索劳动报酬纠纷",
    "建设工程施工合同纠纷", "民间借贷纠纷", "服务合同纠纷",
)
CAUSES_AS_PLAINTIFF: tuple[str, ...] = (
    "买卖合同纠纷", "服务合同纠纷", "承揽合同纠纷", "票据追索权纠纷", "技术服务合同纠纷",
    "运输合同纠纷",
)

REGISTRATION_ACTIVE = ("存续", "在业")
REGISTRATION_REVOKED = "吊销，未注销"

TAX_GRADES = ("A", "B", "M", "C", "D")
