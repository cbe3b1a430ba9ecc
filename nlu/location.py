"""Find where the problem is: a span of the text and its parts.

Rule-based: regular expressions for each kind of part (province, city, district, town/street
office, road + number, estate/village, landmark, building detail), including pseudonymised
names such as "A市", "A3区", "L4县"; a city's own gazetteer (``config/gazetteer.yml``) adds
names that carry no suffix ("米兰春天", "在水一方大厦"). Neighbouring parts separated by at most
a connector are chained; the chain with the most (weighted) parts is the location.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .base import Location

log = logging.getLogger(__name__)

GAZETTEER_PATH = Path(__file__).resolve().parent.parent / "config" / "gazetteer.yml"  # the city's own names

_CJK = r"\u4e00-\u9fff"
# characters that rarely belong to a place name and usually start the clause before it
_LEAD = (
    "我们|我家|我是|本人|家住|代表|购买了|购买|买了|修改|位于|据说|发现|占用|修建|新建|拟建|建设|疏通|主管|解决|请求|要求|"
    "呼吁|整治|治理|改造|开发|入住|办理|申请|恳请|希望|督促|恢复|开通|附近|旁边|对面|门口|后面|前面|周边|隔壁|"
    "楼下|楼上|西侧|东侧|南侧|北侧|东面|西面|南面|北面|里面|外面|每天|每晚|每日|每到|早高峰|晚高峰|高峰期|过|"
    "随着|一名|一位|反应|通过|地处|住在|坐落于|坐落在|处于|关于|反映|投诉|举报|请问|咨询|希望|要求|"
    "对于|经过|连接着|连接|连通|通往|贯穿|沿着|靠近|距离|紧邻|就在|现在|目前|今天|昨天|一直|已经|多年|在|于|到|从|经|沿|由|"
    "的|是|系|有|和|与|及|至|离|对|把|向|往|去|来|被|给|让|将|为|了|个|这|那|该|其|某|我|你|他|她|们|问|"
    # (what opens a chat line before a kind of place: "建议社区…", "孩子学校…", "坐35路…", "整个村")
    "建议|麻烦|如果|孩子|娃|俺们|俺|咱们|咱|阿拉|说找|找过|拉到|开车|坐|逛个|逛|整个|出了事|事|明年|今年|去年|"
    # (family in a chat line: "老公去工地干活…", "我妈在社区医院…")
    "老公|老婆|爱人|丈夫|妻子|媳妇|儿子|女儿|闺女|父亲|母亲|爸爸|妈妈|我爸|我妈|老人|家人|想要|想(?!办法)|"
    "近(?![期日年来几些])|靠|挨着|每年|每周|每月|前天|大前天|明天|后天|早上|晚上|中午|上午|下午|凌晨|半夜|感谢|谢谢|表扬|起来|一下|搭|乘坐|乘|"
    "[一二三四五六七八九十两0-9]{1,2}点(?:多|半|钟)?|"
    "上(?=小学|中学|幼儿园|大学|班)|[建搞开设装划办弄找修][个条]"
)
# (not the first character of a common place-name word: "和平路", "沿江大道", "向阳村")
_LEAD_RE = re.compile(
    rf"^(?:(?!和平|和谐|沿江|沿河|沿海|沿湖|向阳|某某|建设[东西南北中]?(?:路|大道|街))(?:{_LEAD}))+"
)
_STOPCH = "的了是和与及或跟却我你他她们这那在于到从把被给让向对也都就很还又有没不请要等"
# (common place-name words that hold a stop character: "向阳路", "和平街", "在水一方")
_NAME = rf"(?:(?![{_STOPCH}])[{_CJK}A-Za-z0-9]|向(?=阳)|和(?=平|谐)|有(?=色)|在(?=水))"
# 和 inside the usual estate/brand words ("润和紫郡小区", "中建嘉和城", "鑫源和诚"), not as "and";
# 都 inside a name ("彩虹都小区", "黄都港社区") unless it is the adverb ("小区都没有"). The patterns
# that allow them are ~15 % slower, so they run only on texts that hold such a word
_DU = rf"(?<=[{_CJK}])都(?![是要没在有不会能已被很得可让把给快还也成到非])(?=[{_CJK}])"
_HE = rf"(?<=[润嘉悦信源鑫佳万祥协颐永太])和(?=[{_CJK}])"
_NAME_EXT = _NAME[:-1] + f"|{_HE}|{_DU})"
_NEEDS_EXT = re.compile(
    rf"{_HE}|{_DU}[{_CJK}]{{0,6}}?(?:小区|社区|花园|家园|广场|大厦|公寓|新村|村|组|城|苑|园|庭|府|湾|港|路|街|中心)"
)

def _near_end(ends: str, pattern: str) -> re.Pattern[str]:
    """``pattern`` behind a lookahead that each of its matches satisfies anyway: one of ``ends``
    (the first characters of the words that can end the match: 路, 小区, 大厦 …) within its first
    ten characters (a name before such a word is at most eight). Python's re tries a pattern at
    every position of the text; the lookahead turns most positions away in a few steps instead of
    a name's backtracking through every ending (round 13, on the held-out board messages: the
    road, community and landmark patterns in about half the time; the same matches on 19,224
    texts, ``tests/nlu/test_location.py``). Whoever adds an ending to a pattern adds its first
    character to ``ends``."""
    return re.compile(rf"(?=(?s:.){{0,9}}[{ends}])(?:{pattern})")


_PART_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    (
        "province",
        re.compile(rf"(?:(?![{_STOPCH}])[{_CJK}]){{2,7}}(?:省|自治区)|(?:北京|上海|天津|重庆)市?(?=[{_CJK}])"),
    ),
    (
        "city",
        re.compile(
            rf"(?<![A-Za-z0-9])[A-Z]\d{{0,2}}市|(?:(?![的了是和与及或跟在于到从把被给让向对也就很还又有没不请要等我你他她们这那])[{_CJK}]){{2,4}}(?:市|自治州|地区|州)(?![场民政委区长级内])"
        ),
    ),
    (
        "district",
        re.compile(
            rf"(?<![A-Za-z0-9])[A-Z]\d{{1,2}}(?:区|县|市)|(?:(?![{_STOPCH}])[{_CJK}]){{2,3}}(?<!工业)(?:区|县|旗)(?![域别长委政府级内间领])"
        ),
    ),
    (
        "town",
        re.compile(rf"(?<![A-Za-z0-9])(?:(?![的了是我你他她们这那])[{_CJK}]){{2,5}}(?:街道办事处|街道办|街道|镇|乡)(?![长政府党])"),
    ),
    (
        "road",
        _near_end(
            "市区县环国省乡大路街巷胡",
            rf"(?<![A-Za-z0-9])[A-Z]\d{{0,2}}[市区县][东西南北中]?(?:路|大道|大街|街)(?:\d+号)?|"
            # ring roads: "南二环", "三环线"
            rf"[东西南北]?[二三四五]环(?:路|线)?(?![境保节比])|"
            # numbered highways: "107国道", "317乡道"
            rf"(?<![\d])\d{{1,4}}(?:国道|省道|县道|乡道)|"
            rf"{_NAME}{{1,8}}(?:大道|大街|路|街|巷|胡同)(?:[东西南北中]段|[东西南北]延长线)?"
            rf"(?:\d+(?:-\d+)?号(?:院)?|[与和][{_CJK}]{{1,6}}(?:路|街|大道)(?:交叉?|交汇)?口|口)?(?![面费况线灯边人牌])"
        ),
    ),
    (
        "community",
        _near_end(
            "小花社家公新山名雅庭居安宿别生苑府城湾屯村组",
            rf"{_NAME}{{2,8}}(?:小区|花园|社区|家园|公寓|新村|新城|山庄|名苑|花苑|雅苑|庭院|居委会|安置房|宿舍区|别墅区|生活区|宿舍|别墅)"
            # a one-character suffix ends a name only where it does not start a word (城乡, 城区, 府办)
            rf"|{_NAME}{{2,8}}(?:苑|庭|(?<!政)府|城|湾|屯|(?<=[雅颂名佳逸锦])居)(?![乡区镇市管建里内外中民际办委铁])"
            rf"|{_NAME}{{2,4}}村(?![民委干组里])|{_NAME}{{1,4}}(?<!年级)(?<![小班])组(?![长织成民里委干子市区际])"
        ),
    ),
    (
        "landmark",
        _near_end(
            "大广商超市中医卫学小幼公车汽火地高站桥立隧加厂酒宾银派写工物产园垸Kk网歌舞茶棋会馆饭餐影体考驾基停码机收砂养采屠打弃搅垃变华天郡邸阁湖岭景风片校矿",
            rf"{_NAME}{{2,8}}(?:大厦|广场|商场|超市|市场|中心|医院|卫生院|学校|中学|小学|幼儿园|大学|学院|公园|车站|"
            rf"汽车站|火车站|地铁站|高铁站|站(?![不起着稳住岗线])|桥|立交桥|隧道|地下通道|加油站|厂|公司|酒店|宾馆|银行|派出所|大楼|写字楼|工地|"
            rf"物流园|产业园|工业园|工业区|园|垸|KTV|ktv|酒吧|网吧|歌厅|舞厅|茶楼|棋牌室|会所|馆|饭店|餐馆|影城|体育场|考场|驾校|基地|车库|停车场|码头|机场|"
            rf"高速|收费站|砂场|(?:养猪|养殖|养鸡|养牛|采石|屠宰|打沙|弃碴)场|搅拌站|搅拌厂|垃圾站|中转站|变电站|华庭|华府|公馆|天地|郡|邸|阁|湖畔|湖(?![南北区泊])|岭(?![南])|景区|风景区|片区|校区|厂区|矿区)"
            rf"(?![长费生])|[一二三四五六七八九十]{{1,2}}中(?![心间国央午]|学(?!生))"
        ),
    ),
    (
        # an estate named without a suffix, right after an admin unit and before what is said of
        # estates: "A8县" + "未来方舟" + "楼盘", "K市" + "愿景国际" + "物业"
        "community",
        re.compile(
            rf"(?<=[A-Z0-9][市区县])(?!楼盘|项目|业主|物业|开发商|售楼|房产){_NAME}{{2,6}}?(?<!全体)(?<!所有)(?<!广大)(?<!部分)"
            rf"(?=楼盘|项目|业主|物业|交房|开发商|售楼|房产证|精装房|一房两卖|业委会|\d+(?:栋|幢|号楼|单元))"
            # (and a name of three or more characters before a phase: "A市" + "王陵国家" + "一期")
            rf"|(?<=[A-Z0-9][市区县])(?!楼盘|项目|业主|物业|开发商|售楼|房产){_NAME}{{3,6}}?(?=第?[一二三四五六七八九十\d]期)"
        ),
    ),
    (
        "detail",
        re.compile(
            r"(?:[A-Za-z]?\d+(?:-\d+)?[A-Za-z]?(?:栋|幢|号楼|座|单元|楼|层|室|号(?!线)|户|期)){1,4}(?:\d+(?![\d年月日]))?"
            r"|[A-Za-z]\d+(?=[栋幢座])"
            r"|(?<![A-Za-z0-9])[A-Z](?:栋|幢|座)(?:\d+(?:单元|楼|层|室|号))*"
            r"|(?:第?负?[一二三四五六七八九十]+(?:栋|幢|单元|楼|期|层))+"
        ),
    ),
]
_PART_PATTERNS_EXT = [(k, re.compile(p.pattern.replace(_NAME, _NAME_EXT))) for k, p in _PART_PATTERNS]

_WEIGHT = {
    "province": 0.5,
    "city": 0.6,
    "district": 1.0,
    "town": 1.0,
    "road": 1.2,
    "community": 1.2,
    "landmark": 1.0,
    "detail": 0.8,
    "number": 0.5,
}
_CONNECT = re.compile(
    r"^(?:的|内|里|境内|路段|段|、|\s|主干道|辅道|路口|口|上|(?:十字|T字|丁字)?(?:交汇处|交叉口|交界处|交汇口|交叉路口))?(?:的)?$"
)
# an intersection is part of the place (annotated so in all ten cases of the development files)
_CROSS = re.compile(r"(?:十字|T字|丁字)?(?:交汇处|交叉口|交界处|交汇口|交叉路口|路口)")
# between two places of one stretch or area: "星沙大道至松雅湖东几路", "火车南站周边的花侯路"
_JOIN = re.compile(r"^(?:至|到|与|和|跟|同|及|、|周边的|辖下的|旁的?|下穿)$")
_JOINABLE = {"district", "town", "road", "community", "landmark"}
_CROSSING = re.compile(r".+(?:路|街|大道)[与和跟同].+(?:路|街|大道)(?:交叉?|交汇)?口")
# words that end like a place but are not one
_NOT_PLACE = re.compile(
    r"^(?:[一-十两几多]+[区县市镇乡村组]|全[市区县省镇村]|本[市区县省镇村]|我[市区县省镇村]|该[市区县镇村]|各[区县市镇]|"
    r"城区|市区|郊区|小区|社区|景区|园区|辖区|片区|校区|城市|都市|超市|门市|菜市|街道|道路|马路|公路|铁路|线路|出路|思路|"
    r"农村|乡村|城乡|新城|进城|县城|老城|全城|长城|乡镇|城镇|城管|政府|公司|学校|医院|中心|项目|市场|车站|广场|"
    r"自然村|校园|高楼大厦|[区市县]?公交车?站|中小学|小学|中学|大学|幼儿园|工地|开庭|法庭|居民区|同[村组乡镇])$"
    # a quantity or a kind, not a name: "各大医院", "大部分医院", "民营幼儿园"
    r"|^(?:各|大部分|部分|所有|全部|一些|多家|多个|个别|其他|其它|任何|民营|公办|私立|公立|非法|违法|黑|大型|小型|唯一|定期|不定期)"
    # a kind of place named by who or where it serves: "县城学校", "村级公路", "学生宿舍公寓"
    r"|^(?:县城|农村|乡村|城市|城区|乡镇|村级|县级|市级|省级|学生|职工|员工|外来)[\u4e00-\u9fff]{0,4}$"
)


_PREFIX = re.compile(
    rf"^(?:(?P<province>[{_CJK}]{{2,3}}省)|(?P<city>[A-Z]\d{{0,2}}市|[{_CJK}]{{2,3}}市)|"
    rf"(?P<district>[A-Z]\d{{1,2}}[区县]|[{_CJK}]{{2,3}}[区县])|(?P<town>[{_CJK}]{{2,4}}(?:街道|镇|乡)))"
)


@dataclass
class _Part:
    kind: str
    start: int
    end: int
    text: str


# a measure word after a demonstrative or a number is no part of a name: "那条" + "路",
# "那段" + "东环路", "很多" + "路口"
_MEASURE = re.compile(r"(?<=[这那一哪几每某隔该本此])[条段个片家所座间]|(?<=[很许])多")
_COUNTED = re.compile(r"[这那一哪几每某][条段个片家所座间]")  # inside the match: "一家" + "餐馆"


def _trim(kind: str, start: int, s: str, gaz: set[str], text: str = "") -> tuple[int, str]:
    """The match without the words before the name; ``s`` becomes empty when nothing is left but
    a suffix ("到" + "镇上", "那条" + "路")."""
    if s in gaz:
        return start, s
    m = _LEAD_RE.match(s)
    if m and m.end() < len(s) - 1:
        start, s = start + m.end(), s[m.end() :]
    elif m and kind in ("town", "road", "community", "landmark"):
        return start + len(s), ""  # a lead word and a lone suffix: "现在" + "镇", "说找" + "街道"
    if _MEASURE.match(text, start) and s not in gaz:
        start, s = start + 1, s[1:]
    elif _COUNTED.match(s) and s not in gaz:
        start, s = start + 2, s[2:]
    return start, s


# a one-character word before a common noun is not a road's name ("要求铁路" → "求铁路")
_GENERIC_ROAD = re.compile(
    r"^.?(?:铁路|公路|马路|道路|线路|水路|山路|小路|大路|古路)$|^.{2,3}(?:道路|马路)$|^.{0,8}(?:农村|乡村|城市|城区|乡镇|村级|县级|乡间)(?:道路|公路|马路)$|^(?:水泥|柏油|泥巴|泥土|石子|砂石|硬化|沥青)路$"
)
_VERB_HEAD = re.compile(r"^(?:修|建|办|开|拆|占|挖|堆|搞|连接|通往|后面|前面|旁边|对面|里面|一|[东西南北]边)")
_COMPLETE = re.compile(r"(?:路|街|大道|村|组|小区|花园|社区|家园|大厦|广场|学校|中学|小学|医院|公园)$")
_VERB_ROAD = re.compile(r"(?:修|铺|让|走|过|拦|挡|堵|占|问|带|绕|扩|挖|封|迷|领|认|找)(?:马|公|道)?路$")
_VERB_AFTER_PLACE = re.compile(r"(路|街|大道|村|组)(?=修|建|办|开|拆|占|挖|堆|搞|连接|通往)")
_VERB_INSIDE = re.compile(
    r"解决|帮助|加速|加快|修通|取缔|允许|坚决|看病|开发|要求|希望|请求|强制|推动|成立|督促|整治|拆除|迁至|作为|"
    r"听说|近来|途径|途经|尽快|政府|指定|投诉|举报|反映|关于|咨询|疏通|治理|改造|修建|新建|拟建|建设(?![东西南北中]?(?:路|大道|街))|占用|购买|入住|"
    r"办理|申请|恳请|恢复|开通|位于|每天|每晚|经过|早高峰|晚高峰|违建|违规|违法|私建|乱建|交汇处|交叉口|交界处|"
    r"集团|法院|检察院|有限公司|建立|覆盖|回复|答复|搬至|搬到|搬进|自筹|自建|只能|动员|列入|叫啥|叫什么|知道"
)
_BARE_FACILITY = re.compile(
    r"^(?:(?:垃圾|中转|地铁|火车|汽车|高铁|加油|收费|变电|搅拌|客运|动车)站|(?:十字|丁字)?路口|派出所|银行|酒店|"
    r"宾馆|大楼|写字楼|公园|隧道|地下通道|工厂|厂区|矿区|高速|菜市场|农贸市场|停车场|站台|地铁口|楼下|楼上|家门口|"
    # kinds a chat line names without saying which: "楼下饭店", "城中村", "小区花园", "地下车库"
    r"开?(?:小|大)?(?:饭店|饭馆|餐馆|餐厅|超市|商场|网吧|棋牌室|花园|加工厂|化工厂|工地宿舍|宿舍|KTV|ktv|酒吧|公寓)|城中村|"
    r"(?:地下)?车库|"
    r"胡同|巷子|小区花园|老旧小区|住宅小区|快递驿站|驿站|废品站|开发区|工业园|化工园|产业园|古镇|老街|社区医院|地铁工地)$"
)


def _bare(chain: list[_Part]) -> bool:
    """The chain is one part naming only a kind of facility (:data:`_BARE_FACILITY`), or only
    which building, floor or room ("俺家住18楼": of which estate?)."""
    if all(p.kind == "detail" or _DETAIL_RE.fullmatch(p.text) for p in chain):
        return True
    return len(chain) == 1 and bool(_BARE_FACILITY.match(chain[0].text))


_BUS_LINE = re.compile(r"^(?:[A-Z]\d{0,2}[市区县]|[\u4e00-\u9fff]{2,3}[市区县])?[A-Z]?\d+路$")
_BUS_AFTER = re.compile(r"(?:公交|车(?!站)|大巴|班车|线)")
_VENUE = re.compile(r"(?:KTV|ktv|麻将馆|棋牌室|餐馆|歌厅|网吧)$")
_AUTHORITY_AFTER = re.compile(r"[\u4e00-\u9fff]{0,4}(?:局|人民政府|政府|委员会|管委会)\s*[：:，,]")
_BRAND = re.compile(
    r"(?:中建|金茂|万科|保利|恒大|碧桂园|绿地|中海|华润|龙湖|融创|万达|富力|世茂|招商|金地|华晨|中粮|阳光城|旭辉|"
    r"荣盛|建发|佳兆业|雅居乐|北辰|卓越|新城|美的|蓝光|泰禾|协信|鑫苑|正荣|中冶|中铁|中航)"
)
_BRACKET = re.compile(r"[（(][^（()）。！？!?：:\n]{2,24}[）)]")
# a road's suffix inside an estate's or a landmark's match: the name starts after it
_ROAD_INSIDE = re.compile(r"(?<=[\u4e00-\u9fff])(?:路|大道|大街)(?![口段边旁桥])")
# where people live, named after their work unit: "农机公司宿舍", "人民医院家属区"
_HOME_END = re.compile(r"(?:宿舍|家属区|家属院|家属楼)$")
# where something is relative to a place: the place's name ends before it
_SIDE = re.compile(r"(?<!由[东西南北])[往向朝][东西南北]|边上|[东西南北]面|[东西南北左右]侧|左手|右手|左边|右边|里面|外面|对面|附近|旁边|周边|门口|楼下|隔壁|旁(?![边人])")
_TAIL = re.compile(r"(?:站|村|段|群|洞|组)(?![民委干里长员口织成])")
_PSEUDO_INSIDE = re.compile(r"(?<![A-Za-z0-9])[A-Z]\d{0,2}[市区县]")
_ONE_CHAR_END = set("苑庭府城湾屯园桥站厂馆郡邸阁中")
_ROAD_AFTER = re.compile(r"[东西南北中]?(?:路|大道|大街|街)")
_INNER_SUFFIX = re.compile(r"小区|社区|花园|大厦|广场|学校|中学|小学|医院|公司")
# a suffix after a suffix is one name: "恒达时代花园" + "小区"
_SUFFIX_ONLY = re.compile(r"小区|社区|花园|家园")
_BAD_DISTRICT = re.compile(
    r"(?:社区|小区|景区|园区|校区|片区|城区|市区|郊区|辖区|别墅区|宿舍区|库区|矿区|山区|林区|厂区|生活区|商业区|住宅区|服务区|"
    r"办公区|停车区|保护区|示范区|试验区|功能区|核心区|老区|新区|灾区|地区|东区|西区|南区|北区|居住区)$"
)


def default_tagger() -> Any:
    """The committed CRF (``nlu/model/location-crf.crfsuite``), or None if it or pycrfsuite is missing."""
    global _DEFAULT_TAGGER
    if _DEFAULT_TAGGER is False:
        try:
            from .location_model import MODEL_PATH, LocationTagger

            _DEFAULT_TAGGER = LocationTagger(MODEL_PATH) if MODEL_PATH.exists() else None
        except Exception:  # no pycrfsuite, unreadable file: the rules alone still work
            log.warning("location CRF not loaded; rules only", exc_info=True)
            _DEFAULT_TAGGER = None
    return _DEFAULT_TAGGER


_DEFAULT_TAGGER: Any = False


def default_filter() -> Any:
    """The committed mention filter (``nlu/model/location-filter.json``), or None if missing."""
    global _DEFAULT_FILTER
    if _DEFAULT_FILTER is False:
        try:
            from .location_filter import FILTER_PATH, LocationFilter

            _DEFAULT_FILTER = LocationFilter.load(FILTER_PATH) if FILTER_PATH.exists() else None
        except Exception:
            log.warning("location filter not loaded", exc_info=True)
            _DEFAULT_FILTER = None
    return _DEFAULT_FILTER


_DEFAULT_FILTER: Any = False


class LocationExtractor:
    """``tagger``: "default" = the committed CRF if present, None = rules only, or a LocationTagger."""

    def __init__(
        self,
        gazetteer: dict[str, Any] | None = None,
        tagger: Any = "default",
        location_filter: Any = "default",
    ):
        self.tagger = default_tagger() if tagger == "default" else tagger
        self.filter = default_filter() if location_filter == "default" else location_filter
        self.gaz: dict[str, str] = {}
        for kind, names in (gazetteer or {}).items():
            k = {
                "districts": "district",
                "towns": "town",
                "streets": "town",
                "roads": "road",
                "estates": "community",
                "communities": "community",
                "villages": "community",
                "landmarks": "landmark",
                "cities": "city",
                "provinces": "province",
            }.get(kind, kind)
            if k not in _WEIGHT:
                continue
            for n in names or []:
                if isinstance(n, str) and len(n) >= 2:
                    self.gaz[n] = k
        self._gaz_re = (
            re.compile("|".join(re.escape(n) for n in sorted(self.gaz, key=len, reverse=True)))
            if self.gaz
            else None
        )

    def _parts(self, text: str) -> list[_Part]:
        parts: list[_Part] = []
        gaz_names = set(self.gaz)
        if self._gaz_re:
            for m in self._gaz_re.finditer(text):
                kind, a = self.gaz[m.group()], m.start()
                brand = _BRAND.search(text, max(0, a - 4), a) if kind in ("community", "landmark") else None
                if brand and brand.end() == a:  # a developer's brand before the name: "中建" + "梅溪湖"
                    a = brand.start()
                parts.append(_Part(kind, a, m.end(), text[a : m.end()]))
        for kind0, pat in _PART_PATTERNS_EXT if _NEEDS_EXT.search(text) else _PART_PATTERNS:
            pos = floor = 0
            while True:
                # each search starts past the last match's start, whatever the rules below set
                # ``pos`` to: the loop always ends (a re-search from inside a match could repeat it)
                found = pat.search(text, max(pos, floor))
                if not found:
                    break
                floor = found.start() + 1
                pos = found.end()
                kind = kind0
                start, s = _trim(kind, found.start(), found.group(), gaz_names, text)
                pseudo = _PSEUDO_INSIDE.search(s, 1)
                if pseudo and not re.search(r"[省市区县州]$", s[: pseudo.start()]) and s not in gaz_names:
                    # a pseudonymised admin name starts a place: "拉通A4区学堂园", "呼吁解决C5市路"
                    # search again from there: the match may have been cut short by the length limit
                    # ("巿A5区中建嘉和城" | "小区")
                    pos = start + pseudo.start()
                    continue
                if kind in ("community", "landmark", "road"):
                    # a verb or an organisation inside the match: the name starts after it
                    # ("政府帮助解决|新桥小区", "开发公司开发|万科金域蓝湾", "坚决取缔|校园")
                    # (a verb ending the match is its name: "建设路"; the lookaheads see the whole match)
                    cut = max((m.end() for m in _VERB_INSIDE.finditer(s) if m.end() < len(s)), default=0)
                    if cut:
                        pos = start + cut  # look again from after the verb ("疏通|天楚中苑小区")
                        continue
                if kind == "road" and _BUS_LINE.match(s) and _BUS_AFTER.match(text, start + len(s)):
                    continue  # "6路" + "公交车": a bus line
                if (
                    len(s) < 2
                    or _NOT_PLACE.match(s)
                    or (kind == "road" and (_GENERIC_ROAD.match(s) or _VERB_ROAD.search(s)))
                ):
                    continue
                if kind in ("community", "landmark"):
                    verb = _VERB_AFTER_PLACE.search(s)
                    if verb and verb.end(1) >= 3:  # "东冲铺村" | "办自来水厂", "幸福路" | "连接着幸福桥"
                        s = s[: verb.end(1)]
                        pos = start + len(s)
                        kind = "road" if s.endswith(("路", "街", "大道")) else "community"
                    side = _SIDE.search(s, 2)
                    if side:  # "兴盛" | "里面麻将馆", "东风小学" | "北面城中村": the place ends before it
                        if len(s) - side.end() >= 2:
                            pos = start + side.end()  # and another may start after it
                        s = s[: side.start()]
                        kind = "community"
                    road = _ROAD_INSIDE.search(s)
                    if road and len(s) - road.end() >= 4:
                        pos = start + road.end()  # "新安路" | "泉塘公交首末站": the road, then the place
                        continue
                    inner = _INNER_SUFFIX.search(s[:-1])
                    if s.endswith(("花园", "家园", "新村", "山庄", "公寓")) and text.startswith("小区", start + len(s)):
                        s += "小区"  # "…时代花园" + "小区", where the name-length limit cut the match
                        pos = start + len(s)
                    if (
                        inner
                        and inner.end() >= 4
                        and not _HOME_END.search(s)
                        and not _SUFFIX_ONLY.fullmatch(s[inner.end() :])  # "时代花园" + "小区": one name
                    ):
                        s = s[: inner.end()]
                        pos = start + len(s)
                        kind = "community" if inner.group() in ("小区", "社区", "花园") else "landmark"
                if kind == "district" and _BAD_DISTRICT.search(s) and not re.match(r"^[A-Z]\d", s):
                    continue
                if kind in ("community", "landmark") and s[-1] in _ONE_CHAR_END:
                    if _ROAD_AFTER.match(text, start + len(s)):
                        continue  # "学堂园" + "路": a road's name, which the road pattern reads
                if kind in ("district", "city") and _ROAD_AFTER.match(text, start + len(s)):
                    continue  # "A1区路", "C5市北路": a pseudonymised road name, not an admin unit
                if s.startswith(("该", "本", "此", "这", "那")) or s.endswith(
                    ("进城", "农村", "乡村", "城乡")
                ):
                    continue
                parts.append(_Part(kind, start, start + len(s), s))
        # a crossing of two roads is one place, whichever of them the gazetteer knows:
        # "解放路和" + "人民路" + "交叉口" would otherwise keep only the known road's half
        crossings = [p for p in parts if p.kind == "road" and _CROSSING.fullmatch(p.text)]
        parts = [
            p
            for p in parts
            if not (
                p.text in gaz_names
                and any(c.start <= p.start and p.end <= c.end and c is not p for c in crossings)
            )
        ]
        # resolve overlaps: gazetteer, then precise admin names, then longer/earlier matches
        admin = {"province": 0, "city": 1, "district": 2, "town": 3}
        parts.sort(
            key=lambda p: (
                -(p.text in gaz_names),
                -bool(re.match(r"^[A-Z]\d{0,2}[市区县]$", p.text)),
                admin.get(p.kind, 9),
                -(p.end - p.start),
                p.start,
            )
        )
        chosen: list[_Part] = []
        for p in parts:
            for q in chosen:
                if p.start < q.end and q.start < p.end and q.end < p.end:
                    p = _Part(p.kind, q.end, p.end, text[q.end : p.end])  # trim the overlapping head
            if len(p.text) < 2 or _NOT_PLACE.match(p.text):
                continue
            if any(p.start < q.end and q.start < p.end for q in chosen):
                continue
            chosen.append(p)
        chosen.sort(key=lambda p: p.start)
        return self._split_composites(chosen)

    def _split_composites(self, parts: list[_Part]) -> list[_Part]:
        """A long match may swallow a prefix part ("A3区联丰路" as a road): peel off admin prefixes."""
        out: list[_Part] = []
        pre = _PREFIX
        for p in parts:
            s, start = p.text, p.start
            while True:
                m = pre.match(s)
                if not m or m.end() >= len(s) - 1:
                    break
                kind = m.lastgroup or "district"
                if kind == p.kind or (kind == "district" and _BAD_DISTRICT.search(m.group())):
                    break  # ("港社区" is not a district)
                out.append(_Part(kind, start, start + m.end(), m.group()))
                start += m.end()
                s = s[m.end() :]
            out.append(_Part(p.kind, start, p.end, s))
        return out

    def chain(self, text: str) -> list[_Part]:
        """The parts of the place the rules and the CRF find (before the mention filter)."""
        if not text or not text.strip():
            return []
        text = text[:1500]
        parts = self._parts(text)
        best = self._best_chain(text, parts)
        if self.tagger is not None:
            best = self._refine(text, best, parts)
            for p in parts:  # the CRF extended the chain up to a detail: "绿地海外滩" + "二期"
                if best and p.kind == "detail" and p.start == best[-1].end and best[-1].kind != "detail":
                    best.append(p)
        last = best[-1] if best else None
        if (
            last
            and last.kind in ("community", "landmark")
            and (last.text not in self.gaz or last.kind == "community")
            and not last.text.endswith(("小区", "社区"))
            and text.startswith("小区", last.end)
        ):  # "江南华府" + "小区", "丽发新城" + "小区", a city's estate "米兰春天" + "小区": one name
            best[-1] = _Part("community", last.start, last.end + 2, text[last.start : last.end + 2])
            detail = _DETAIL_RE.match(text, best[-1].end)
            if detail and detail.end() - detail.start() <= 12:  # "米兰春天小区" + "3栋"
                best.append(_Part("detail", detail.start(), detail.end(), detail.group()))
        cross = _CROSS.match(text, best[-1].end) if best and best[-1].kind == "road" else None
        if cross:  # "木莲路与新姚路" + "交界处"
            best.append(_Part("detail", cross.start(), cross.end(), cross.group()))
        elif best:
            tail = _TAIL.match(text, best[-1].end)
            last = best[-1]
            if tail and last.kind in ("community", "landmark", "road") and not _STRONG.search(last.text):
                # "五一广场" + "站", "三龙湾" + "村", "长盛岚庭" + "段": one more place character
                best[-1] = _Part(last.kind, last.start, tail.end(), text[last.start : tail.end()])
        bracket = _BRACKET.match(text, best[-1].end) if best else None
        if bracket and best[-1].kind != "city":
            # "港子河路" + "（暮云段）", "暮云社区" + "（原远航公司）": a note on the place is part of it
            best.append(_Part("detail", bracket.start(), bracket.end(), bracket.group()))
        # a kind of facility alone, without a name or a road ("楼下垃圾站", "这个路口"), is not a
        # place a department can find: nothing is found, so the bot asks where ("五一大道地铁站"
        # is a place; falling back to another chain was tried: on real messages it found worse)
        return [] if _bare(best) else best

    def extract(self, text: str, title: str = "") -> Location:
        best = self.chain(text)
        if not best:
            return Location()
        text = text[:1500]
        if self.filter is not None:
            try:
                if not self.filter.keep(text, best):
                    return Location()  # an organisation, a policy or a city mentioned, not a place
            except Exception:  # the filter must never lose what was found
                log.warning("location filter failed", exc_info=True)
        return self._location(text, best)

    def _best_chain(self, text: str, parts: list[_Part]) -> list[_Part]:
        if not parts:
            return []
        chains: list[list[_Part]] = [[parts[0]]]
        for p in parts[1:]:
            prev = chains[-1][-1]
            gap = text[prev.end : p.start]
            if (
                p.start >= prev.end
                and (
                    _CONNECT.match(gap)
                    or (_JOIN.match(gap) and prev.kind in _JOINABLE and p.kind in _JOINABLE)
                )
                and not (not gap and _VERB_HEAD.match(p.text) and _COMPLETE.search(prev.text))
                and not (_holds_venues(prev) and _VENUE.search(p.text))
            ):
                # (a venue inside an estate is not the place, the estate is: "泉塘小区" | "麻将馆";
                # a part that starts with a verb right after a complete place is what happens there:
                # "羊思坡" | "修路", "东冲铺村" | "办自来水厂", "幸福路" | "连接着幸福桥")
                chains[-1].append(p)
            else:
                chains.append([p])
        # (re-ranking candidate chains by the CRF's support was tried: dev char-F1 0.831 vs 0.838)
        # admin units right before an authority are whom the letter is to ("尊敬的A市A3区城管局："),
        # so another chain is preferred; they still count when nothing else is found
        best = max(chains, key=lambda ch: _score(ch) * (0.5 if _addressee(text, ch) else 1.0))
        return best if _score(best) >= 0.9 else []

    def _location(self, text: str, best: list[_Part]) -> Location:
        loc = Location(text=text[best[0].start : best[-1].end], start=best[0].start, end=best[-1].end)
        for p in best:
            field = p.kind
            if field == "road":
                m = re.match(r"^(.*?)(\d+(?:-\d+)?号(?:院)?)$", p.text)
                if m:
                    loc.road = loc.road or m.group(1)
                    loc.number = loc.number or m.group(2)
                    continue
            if field == "detail" and loc.road and not loc.number:
                m = re.match(r"^(\d+(?:-\d+)?号(?:院)?)(.*)$", p.text)
                if m:
                    loc.number = m.group(1)
                    if not m.group(2):
                        continue
                    p = _Part("detail", p.start + len(m.group(1)), p.end, m.group(2))
            current = getattr(loc, field)
            if not current:
                setattr(loc, field, p.text)
            elif field == "detail":
                loc.detail = current + p.text
        return loc

    def _refine(self, text: str, best: list[_Part], parts: list[_Part] | None = None) -> list[_Part]:
        """Let the CRF correct the rules' chain: drop end parts it reads as outside, extend the
        chain over a name it reads as inside ("A6区" + "中粮鸿云"), or find a place the rules missed."""
        # the CRF reads a window around the rules' chain (or the head of the text): a linear chain
        # needs little context, and this bounds the cost (~0.1 ms per 20 characters)
        if best:
            a, b = max(0, best[0].start - WINDOW), min(len(text), best[-1].end + WINDOW)
        else:
            a, b = 0, min(len(text), HEAD)
        try:
            wtags, winside = self.tagger.tag(text[a:b])
        except Exception:  # a tagger failure must never lose what the rules found
            log.warning("location CRF failed; rules only", exc_info=True)
            return best
        tags = ["O"] * a + wtags
        inside = [0.0] * a + winside
        n = len(tags)
        if not n:
            return best
        best = list(best)

        def mean(a: int, b: int) -> float:
            b = min(b, n)
            return sum(inside[a:b]) / (b - a) if b > a else 1.0

        def protected(p: _Part) -> bool:
            return p.text in self.gaz or bool(_PSEUDO_ADMIN.match(p.text))

        if best:
            # the tail the CRF confidently reads as outside, right after a part it reads as inside
            last = best[-1]
            if not protected(last) and last.kind in ("landmark", "community", "road") and last.end <= n:
                cut = _cut_point(inside, last.start, last.end)
                if cut is not None and cut - last.start >= 2 and last.end - cut >= 4 and not _STRONG.search(last.text):
                    best[-1] = _Part(last.kind, last.start, cut, text[last.start : cut])
                elif (
                    len(best) > 1
                    and len(last.text) >= 4
                    and not _STRONG.search(last.text)
                    and _STRONG.search(best[-2].text)
                    and max(inside[last.start : last.end]) < OUT
                ):
                    best.pop()  # "南泉小区" + "占用耕地建砂场": a verb phrase that happens to end in 场
            if _score(best) < 0.9:
                return []
            e = best[-1].end
            if 0 < e < n and tags[e] == "I" and tags[e - 1] != "O":
                j = e
                while j < n and tags[j] == "I":
                    j += 1
                if not _name_like(text[e:j]):
                    # the CRF ran on ("…润和长郡小区6位"): stop at the end of a rule part inside its span
                    ends = sorted((p.end for p in parts or [] if e < p.start < p.end < j), reverse=True)
                    j = next((k for k in ends if _name_like(text[e:k], 16)), j)
                if not _name_like(text[e:j]):
                    # … or ran over a function word: a name stops before it ("枫丹白露北门" | "的水沟")
                    k = next((k for k in range(e, j) if text[k] in _INNER_STOP), j)
                    if k < j and _name_like(text[e:k]):
                        j = k
                side = _SIDE.search(text, e, j)
                if side:  # "力都大厦" | "旁新规划"
                    j = side.start()
                if best[-1].kind == "road" and (text.startswith("口", e) or best[-1].text.endswith("口")):
                    j = e  # "联丰路" | "口红绿灯", "…交叉口" | "红绿灯": the crossing ends the place
                ext = text[e:j]
                detail = bool(_DETAIL_RE.fullmatch(ext))
                after_admin = best[-1].kind in ("province", "city", "district", "town", "road")
                after_admin = after_admin or bool(_WEAK.search(best[-1].text))  # "绿城" + "桃花源"
                sure = mean(e, j)
                if (
                    _name_like(ext, 16)
                    and not _ORG_NAME.search(ext)  # an organisation is not a place ("M2县" + "电视台")
                    and not (_holds_venues(best[-1]) and _VENUE.search(ext))
                    and (sure >= EXTEND and (after_admin or detail) or sure >= SURE)
                ):
                    gate = _GATE.search(ext)
                    if gate and not detail:  # "枫丹白露北门": the estate, then which gate
                        if gate.start():
                            best.append(_Part("community", e, e + gate.start(), ext[: gate.start()]))
                        best.append(_Part("detail", e + gate.start(), j, gate.group()))
                    elif not detail and best[-1].kind in ("community", "landmark"):
                        last = best[-1]  # one name: "绿城" + "桃花源"
                        best[-1] = _Part(last.kind, last.start, j, text[last.start : j])
                    else:
                        inner = None if detail else _DETAIL_RE.search(ext, 2)
                        if inner and inner.end() == len(ext):  # "米兰春天" + "G2栋320"
                            k = e + inner.start()
                            best.append(_Part("community", e, k, ext[: inner.start()]))
                            best.append(_Part("detail", k, j, inner.group()))
                        else:
                            best.append(_Part("detail" if detail else "community", e, j, ext))
            s0 = best[0].start
            if 0 < s0 < n and tags[s0] == "I":
                i = s0
                while i > 0 and tags[i - 1] == "I":
                    i -= 1
                if i > 0 and tags[i - 1] == "B":
                    i -= 1
                ext = text[i:s0]
                m = _PREFIX.match(ext)
                if (m and m.end() == len(ext)) or (
                    _name_like(ext) and mean(i, s0) >= EXTEND and not _LEAD_RE.match(ext)
                ):
                    best.insert(0, _Part(m.lastgroup or "district" if m else "community", i, s0, ext))
            return best
        # the rules found nothing: a confident CRF span that reads like a place
        cands = []
        i = 0
        while i < n:
            if tags[i] == "O":
                i += 1
                continue
            j = i + 1
            while j < n and tags[j] == "I":
                j += 1
            span = text[i:j]
            city = _CITY_ONLY.match(span)  # what follows a city must read like a name too
            rest = span[city.end() :] if city else span
            if (
                len(span) >= 3
                and _name_like(span)
                and mean(i, j) >= ALONE
                and rest
                and (rest == span or _name_like(rest))
            ):
                cands.append((mean(i, j) * len(span), i, j))
            i = j
        if not cands:
            return []
        _, i, j = max(cands)
        return [_Part("landmark", i, j, text[i:j])]


WINDOW = 24
HEAD = 160
OUT = 0.35
IN = 0.7
SURE = 0.95
EXTEND = 0.55
ALONE = 0.9
_PSEUDO_ADMIN = re.compile(r"^[A-Z]\d{0,2}[省市区县]$")
_DETAIL_RE = _PART_PATTERNS[-1][1]
_CITY_ONLY = re.compile(rf"(?:[{_CJK}]{{2,3}}省|西地省)?(?:[A-Z]\d{{0,2}}市|[{_CJK}]{{2,3}}市)?")
_STRONG = re.compile(
    r"(?:小区|花园|社区|家园|公寓|新村|村|组|大厦|广场|中学|小学|学校|医院|华庭|华府|公馆|山庄|庭院|[名花雅]苑|站)$"
)
# one-character suffixes that are as often inside an estate's name as at its end
_WEAK = re.compile(r"^.{1,3}[城苑庭府湾园居阁郡邸]$")
_ORG_NAME = re.compile(
    r"(?:公司|集团|局|委|委员会|政府|电视台|报社|银行|协会|部门)$|法院|检察院|公安局|有限公司|集团|政府|委员会"
)
_GATE = re.compile(r"[东西南北正大侧后]门$")
_EXT_BAD = re.compile(
    r"^(?:附近|门口|对面|旁边|周边|前面|后面|楼下|楼上|[东西南北]侧|[东西南北]边|内|里|外|前|后|旁|边|门|人(?!民))|"
    # a kind of place or what is said of one, not a name: "K1区" + "学校食堂", "A6区" + "物业以欠"
    r"^(?:学校|医院|幼儿园|农村|乡镇|道路|公路|单位|企业|公司|物业|业主|开发商)|(?:附近|门口|对面|旁边|周边)$"
)


def _cut_point(inside: list[float], start: int, end: int) -> int | None:
    """First position k in [start, end) after a char read as inside (≥ IN) from which all read < OUT."""
    for k in range(start, end):
        if all(x < OUT for x in inside[k:end]) and k > 0 and inside[k - 1] >= IN:
            return k
    return None


def _addressee(text: str, ch: list[_Part]) -> bool:
    return all(p.kind in ("province", "city", "district") for p in ch) and bool(
        _AUTHORITY_AFTER.match(text, ch[-1].end)
    )


def _holds_venues(p: _Part) -> bool:
    """An estate, a town or a sub-area ("四区"), not a district proper ("K1区" + "新温莎KTV")."""
    return p.kind in ("community", "town", "detail") or p.kind == "district" and not _PSEUDO_ADMIN.match(p.text)


def _name_like(s: str, longest: int = 10) -> bool:
    if not 2 <= len(s) <= longest or _EXT_BAD.search(s) or _NOT_PLACE.match(s) or _VERB_ROAD.search(s):
        return False
    if s[0] in _STOPCH or s[-1] in _STOPCH or _VERB_INSIDE.search(s):
        return False
    return all(("\u4e00" <= c <= "\u9fff" or c.isalnum() or c in "-·.") and c not in _INNER_STOP for c in s)


_INNER_STOP = set("的了是在我你他她们这那把被给让也就很没不请要")


def _score(ch: list[_Part]) -> float:
    s = sum(_WEIGHT.get(p.kind, 0.5) for p in ch)
    kinds = {p.kind for p in ch}
    if kinds <= {"province", "city"} or kinds == {"detail"}:
        s *= 0.3  # "A市" alone or "3栋" alone is not where the problem is
    return s - ch[0].start / 10000.0


_PLACE_READER: LocationExtractor | None = None


def read_place(text: str) -> Location:
    """A place as a person wrote it down (an operator's 属地更正), read into its parts: with the
    city's gazetteer and the CRF, but not the mention filter (what is written there is a place by
    construction). The reader is built on the first call (about 0.4 s), then kept."""
    global _PLACE_READER
    if _PLACE_READER is None:
        _PLACE_READER = LocationExtractor(load_gazetteer(GAZETTEER_PATH), location_filter=None)
    return _PLACE_READER.extract(text)


def load_gazetteer(path: Path | None) -> dict[str, Any]:
    if not path or not Path(path).exists():
        return {}
    import yaml

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
    return data if isinstance(data, dict) else {}
