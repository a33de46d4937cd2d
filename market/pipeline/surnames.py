"""Chinese surnames, used to recognise person names among column values.

About 400 single-character surnames, which between them cover the great majority of the
population, plus the compound surnames still in use. A value "looks like a name" when it is
2-4 CJK characters that start with one of these (see :mod:`market.pipeline.detect`); the header
hints decide in doubtful cases, because many ordinary words also start with a surname
character (黄浦区, 金融, 高新区).
"""

from __future__ import annotations

_SINGLE = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程"
    "苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付傅方白邹孟熊秦邱丘江尹薛闫阎段雷侯龙史陶黎贺"
    "顾毛郝龚邵万钱严覃武戴莫孔向汤常温康施文牛樊葛邢安齐易乔伍庞颜倪庄聂章鲁岳翟殷詹申欧耿关"
    "兰焦俞左柳甘祝包宁尚符舒阮柯纪梅童凌毕单季裴霍涂成苗谷盛曲翁冉骆蓝路游辛靳管柴蒙鲍华喻祁"
    "蒲房滕屈饶解牟艾尤阳时穆农司卓古吉缪简车项连芦麦褚娄窦戚岑景党宫费卜冷晏席卫米柏宗瞿桂全"
    "佟应臧闵苟邬边卞姬师和仇栾隋商刁沙荣巫寇桑郎甄丛仲虞敖巩明佘池查麻苑迟邝官封谈匡鞠惠荆乐"
    "冀郁胥南班储原栗燕楚鄢劳谌奚皮粟冼蔺楼盘满闻位厉伊仝区郜海阚花权强帅屠豆朴盖练廉禹井祖漆"
    "巴丰支卿国狄平计索宣晋相初门云容敬来扈晁芮都普阙浦戈伏鹿薄邸雍辜羊阿乌母裘亓修邰赫杭况那"
    "宿鲜印逯隆茹诸战慕危玉银亢嵇公哈湛宾戎勾茅利於呼居揭干但尉斯元束檀衣信展阴昝智幸奉植衡富"
    "尧闭由萧蔚"
)

#: Single-character surnames.
SINGLE_SURNAMES: frozenset[str] = frozenset(c for c in _SINGLE if "\u4e00" <= c <= "\u9fff")

#: Two-character (compound) surnames.
COMPOUND_SURNAMES: frozenset[str] = frozenset(
    {
        "欧阳", "司马", "上官", "诸葛", "东方", "皇甫", "尉迟", "公孙", "慕容", "长孙",
        "宇文", "司徒", "夏侯", "轩辕", "令狐", "端木", "西门", "南宫", "独孤", "澹台",
        "呼延", "百里", "万俟", "司空", "闻人", "钟离", "申屠", "太史", "完颜", "拓跋",
    }
)  # fmt: skip


def starts_with_surname(value: str) -> bool:
    """True if ``value`` begins with a known single or compound surname."""
    return value[:2] in COMPOUND_SURNAMES or value[:1] in SINGLE_SURNAMES
