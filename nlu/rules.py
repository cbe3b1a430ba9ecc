"""Request type (投诉/举报/求助/咨询/建议/表扬) and urgency from what the words mean.

Weighted keyword rules. For request type they are features of the learned model in
:mod:`nlu.request_type` (and decide alone with an older artifact); urgency is rules only.
"""

from __future__ import annotations

import re

# (pattern, weight); a pattern may match several times, each match counts once
_RT_RULES: dict[str, list[tuple[str, float]]] = {
    "举报": [
        (r"举报|检举|揭发|实名反映", 3.0),
        (
            r"违法|违规|非法|偷排|偷倒|私自|黑作坊|无证经营|无照经营|传销|赌博|涉黄|涉赌|贪污|受贿|腐败|"
            r"挪用|套取|骗取|虚报|造假|克扣|收受|红包|偷税|逃税|违建|违章搭建|乱搭乱建|超载|涉嫌",
            1.2,
        ),
    ],
    "投诉": [
        (r"投诉|控诉|不作为|乱作为|推诿|扯皮|态度恶劣|态度差|刁难|不管不问|无人管|没人管|没人处理", 2.5),
        (
            r"扰民|噪音|乱收费|多收|拖欠|欠薪|不退|霸王条款|强制|强行|损害|侵害|侵犯|严重影响|恶劣|"
            r"臭|脏乱差|堵塞|损坏|坏了|破损|漏水|停水|停电|被占|占道|乱停|乱摆|扰|太吵|污染|排放|噪声|"
            r"不合理|不公平|不公|欺骗|坑|敷衍|拒绝|拖延|至今未|迟迟|一直没有|无果|整改|强烈要求|强烈建议",
            1.0,
        ),
    ],
    "求助": [
        (
            r"求助|求救|救救|帮帮|帮忙|走投无路|无助|求求|恳请.*帮助|请求帮助|请帮|救命|急需|无家可归|生活困难|没钱",
            2.5,
        ),
        (r"困难|看病难|怎么办才好|该怎么办|怎么办|不知所措|希望.*帮助|给予帮助|解决一下|讨薪|讨要", 1.0),
    ],
    "咨询": [
        (r"咨询|请问|想问|问一下|问问|了解一下|想了解|打听", 2.5),
        (
            r"是否|能否|可否|可不可以|能不能|是不是|有没有|怎么办理|如何办理|怎样办理|办理流程|需要什么|需要哪些|"
            r"什么材料|什么手续|在哪里|在哪|什么时候|何时|多久|多少钱|标准是|政策|规定|条件|流程|吗[?？]?|呢[?？]|[?？]",
            0.8,
        ),
    ],
    "建议": [
        (r"建议|提议|倡议|呼吁|献策|意见", 2.5),
        (
            r"希望.*(?:增设|增加|设置|修建|开通|延长|加装|安装|改善|优化|完善|规划)|可否考虑|能否考虑|是否可以考虑|"
            r"应该|最好|尽快|加快|增设|增加|开通|优化|改进|完善|设立|推广",
            0.8,
        ),
    ],
    "表扬": [
        (r"表扬|赞扬|点赞|称赞|锦旗|感谢信|致谢|好人好事|拾金不昧|为.{1,12}点赞|给.{1,12}点赞", 3.0),
        (r"感谢|谢谢|辛苦了|热心|负责任|认真负责|及时解决|很满意|非常满意|为民办实事|尽职尽责|好评", 1.0),
    ],
}
_RT_COMPILED = {k: [(re.compile(p), w) for p, w in v] for k, v in _RT_RULES.items()}
_PRIOR = {"投诉": 0.6, "咨询": 0.3, "求助": 0.1, "建议": 0.1, "举报": 0.0, "表扬": 0.0}
RT_LABELS = tuple(_RT_RULES)


def rule_points(src: str) -> dict[str, float]:
    """Keyword points per request type in one text (each pattern: weight x sqrt(matches, at most 3))."""
    points = dict.fromkeys(RT_LABELS, 0.0)
    if src:
        for label, rules in _RT_COMPILED.items():
            for pat, w in rules:
                n = len(pat.findall(src))
                if n:
                    points[label] += w * min(n, 3) ** 0.5
    return points


_URGENT: list[tuple[str, str]] = [
    (
        "燃气",
        r"(?:燃气|煤气|天然气|液化气|气罐)(?:.{0,6})(?:泄漏|泄露|漏气|漏了|味道很大|爆炸)|漏气|闻到.{0,4}(?:煤气|燃气|天然气)|"
        r"(?:燃气|煤气|天然气|液化气)味(?:道)?(?:很|特别|非常|好|越来越|太)?(?:重|浓|大|冲|刺鼻)|(?:楼道|屋里|家里|厨房|房间|单元).{0,12}臭鸡蛋味|"
        r"(?:燃气|煤气|天然气|液化气).{0,12}嘶嘶",
    ),
    (
        "火灾",
        r"着火了|起火了|失火|火势|火情|烧起来|正在燃烧|"
        r"(?:电路|线路|电线|电器|电箱|电表箱|配电箱|电闸).{0,4}(?:起火|着火|冒烟|烧坏|烧毁|自燃)|"
        r"(?:引发|引起|造成)(?:了)?.{0,2}(?:电)?火灾|易燃易爆|危险化学品|危化品|"
        r"(?:充电|电瓶|电池|电动车|插座|插线板|插排).{0,8}(?:冒烟|冒黑烟|冒火|起火|着火|焦糊味)|"
        r"(?:堆|囤|存放|藏|私藏|堆放|屯)(?:了|着|满)?.{0,8}(?:烟花爆竹|鞭炮|炸药|雷管)",
    ),
    (
        "坍塌",
        r"坍塌|倒塌|垮塌|塌方|塌陷|塌了|倾斜|随时(?:可能|会|都会|都可能)?(?:倒|塌|掉|垮|砸)|随时有.{0,4}(?:倒塌|坍塌|垮塌|危险)|"
        r"摇摇欲坠|高空坠物|倒下来|砸死|砸伤|砸到人|掀翻|掀掉|掀飞|"
        r"(?:瓷砖|外墙|墙皮|玻璃|招牌|广告牌|树枝|石头|石块|水泥块|花盆|钢管|钢筋|东西|杂物).{0,6}掉下来|"
        r"(?:拆除?|打掉|打通|破坏|改动)(?:了)?.{0,6}承重墙|承重墙.{0,6}(?:拆|破坏|打掉)|"
        r"(?:房屋|房子|墙体|楼房|楼体|地基|主体|主体结构|整栋|整体).{0,10}(?:下沉|沉降)|"
        r"(?:下沉|沉降).{0,12}(?:开裂|裂缝)|(?:炸药|爆破|放炮).{0,12}(?:震|开裂|裂缝)|松动.{0,20}(?:陷阱|危险|跷跷板)|歪斜|"
        r"(?:梁|栏杆|护栏|扶手|楼梯).{0,4}(?:已断|断了|断掉|断裂)|(?:房屋|房子|墙体|楼房).{0,6}移位|"
        r"(?:敲除|拆除|拆掉|打掉|敲掉)(?:了)?.{0,4}(?:外墙|剪力墙|梁|柱)|改变(?:了)?(?:房屋)?(?:主体)?结构",
    ),
    (
        "开裂",  # cracks alone are a quality complaint; with a sign of severity they are a danger
        r"(?:房屋|房子|墙体|墙面|外墙|承重墙|楼房|楼体|楼板|顶板|地基|主体|主体结构|整栋|整体|梁|柱).{0,10}(?:开裂|裂缝|空洞|裂开)",
    ),
    (
        "洪涝",
        r"被淹|淹了|淹没|内涝|决堤|溃坝|溃堤|山洪|泥石流|滑坡|积水.{0,6}(?:进屋|进家|漫|齐腰|过膝)|(?:污水|粪水|雨水|水).{0,6}(?:倒灌|(?:漫|流|灌|涌)(?:进|往|入)).{0,4}(?:家|屋|房)",
    ),
    (
        "暴力",
        r"打人|殴打|被打(?![压折卡扰乱破通开印])|持刀|砍人|砍伤|行凶|杀人|威胁.{0,6}(?:杀|命|砍|打)|家暴|家庭暴力|绑架|劫持|抢劫|围殴|斗殴|"
        r"(?:扬言|威胁|恐吓).{0,8}(?:报复|弄死|打死|杀)|(?:威胁|恐吓)(?:乘客|居民|群众|村民|业主|路人|我们|我和|我家|家人)|"
        r"(?:涉黑|黑社会|黑恶)(?:人员|势力|团伙)?.{0,10}(?:恐吓|威胁|打|砸)|敲诈勒索|"
        r"(?:拿|举|提|挥|握)着?(?:一把)?(?:菜刀|刀|砍刀|剪刀|斧头|铁棍|钢管|棍子)|(?:要|扬言|说要)(?:砍|杀|捅|放火|烧死|烧房|烧了你)|泼(?:红)?油漆|"
        r"传销.{0,10}(?:关在|关起来|被关|扣押|扣了|不让(?:走|出门|离开))|被关在.{0,8}(?:出租屋|房间|屋里|里面)|限制(?:了)?(?:人身)?自由",
    ),
    (
        "儿童",
        r"(?:孩子|小孩|儿童|婴儿|幼儿|学生).{0,8}(?:被困|走失|失踪|被锁|锁在|虐待|被打|溺水|坠楼|被拐|被咬|被关|非法拘禁)|虐童|虐待儿童|拐卖|咬伤.{0,6}(?:孩子|小孩|儿童)|"
        r"(?:打|抽|虐待)(?:孩子|小孩)|锁着.{0,8}(?:孩子|小孩|婴儿)|(?:孩子|小孩|儿子|女儿).{0,16}(?:没回家|没有回家|还没回来|找不到了|联系不上)",
    ),
    (
        "生命危险",
        r"跳楼|自杀|轻生|不想活|生命危险|危及(?:.{0,6})(?:生命|安全)|(?:生命|人身)安全.{0,8}(?:威胁|危险)|"
        r"人命|昏迷|休克|触电|漏电|电线.{0,6}(?:掉|断|裸露|垂|外露|乱拉)|(?:电缆|电线|线路).{0,8}(?:裸露|外露|拖地)|(?:裸露|外露).{0,8}(?:电缆|电线)|"
        r"井盖.{0,16}(?:丢|缺失|没了|被偷|破损|塌陷|撞飞|移位|不见)|(?:打死|砸死|压死)人|"
        r"电梯.{0,10}(?:掉层|掉到|坠落|下坠|溜梯|冲顶|蹲底)|(?:困|关|卡)(?:在)?电梯|电梯.{0,6}(?:被困|困人|关人|坠落)|"
        r"救命(?:啊|[！!])|喊救命|呼救|溺水|出人命|叫不醒|喊不醒|不省人事|抽搐|流血不止|(?:一直|不停)(?:在)?(?:出血|流血)|"
        r"羊水破|见红|救人要紧|一氧化碳中毒|煤气中毒|食物中毒|喝(?:了)?农药|服毒|吞(?:了)?.{0,4}药|割腕|(?:独居|孤寡|空巢)老人.{0,16}(?:没出门|没动静|联系不上|没反应|无人应答)|情况(?:十分|非常)?紧急|紧急求助|紧急呼吁|急需.{0,8}血|熊猫血|"
        r"(?:自来水|饮用水|饮水|生活用水).{0,12}(?:刺鼻|有毒|中毒|黄水|发黄|浑浊|发臭)|黄水煮|(?:多次|经常|频繁|屡次|时常)(?:发生|出现).{0,4}(?:交通)?(?:事故|意外)",
    ),
]
_URGENT_COMPILED = [(k, re.compile(p)) for k, p in _URGENT]
# Just before a match: a danger that is prevented, denied or only imagined. (A risk said to
# be near -- 容易垮塌, 随时可能会掉落 -- is a danger now: annotators mark it urgent.)
_NEGATED = re.compile(r"没有|并未|不会|防止|预防|避免|以免|防范|演练|宣传|培训|排查|一旦|如果|万一|假如|若")
# Around a match: a danger in the past, a court case, a policy question, or a figure of speech.
_NOT_NOW = re.compile(
    r"\d{2,4}年|去年|前年|上个月|上月|上周|曾经|曾|上次|当时|那次|那年|发生过|事发|案件|一案|本案|刑事|犯罪|判决|起诉|立案|追究|伪证|"
    r"\d{1,2}月\d{1,2}[日号]|政策|补偿|补助|改造|鉴定|标准|申请|咨询|是否|水漫金山|隐患排查|新闻|报道|网上|看到"
)


def combine(title_points: dict[str, float], text_points: dict[str, float]) -> tuple[str, float, dict[str, float]]:
    """The rules' verdict from the points of a title (counted double) and of a text."""
    scores = {k: _PRIOR[k] + 2.0 * title_points[k] + text_points[k] for k in RT_LABELS}
    best = max(scores, key=scores.__getitem__)
    total = sum(max(v, 0.0) for v in scores.values()) or 1.0
    return best, round(min(scores[best] / total, 0.99), 3), scores


def request_type(text: str, title: str = "") -> tuple[str, float, dict[str, float]]:
    """The rules alone (title counts double): used when the artifact has no learned model."""
    return combine(rule_points(title), rule_points(text[:1500]))


def urgency(text: str) -> tuple[bool, str]:
    """True with the reason (燃气/火灾/坍塌/开裂/洪涝/暴力/儿童/生命危险) when the text describes a danger
    now: a match is passed over when the few characters before it prevent, deny or imagine it
    (预防/一旦/如果...) or the clause around it is about the past, a court case or a policy
    (2018年/曾/案件/补偿/是否...). Tuned on the training rows of real messages."""
    t = text[:3000]
    for kind, pat in _URGENT_COMPILED:
        for m in pat.finditer(t):
            if _NEGATED.search(t[max(0, m.start() - 6) : m.start()]):
                continue
            clause = _clause(t, m.start(), m.end())
            if _NOT_NOW.search(clause) or (kind == "开裂" and not _SEVERE.search(clause)):
                continue
            return True, f"{kind}: {m.group()}"
    return False, ""


_SEVERE = re.compile(r"严重|多处|大面积|贯穿|整体|随时|危险|危及|威胁|倒塌|垮塌|下沉|沉降|越来越|不断|加剧|不敢住")
_CLAUSE_END = re.compile(r"[。！？!?；;\n]")


def _clause(t: str, start: int, end: int) -> str:
    """The sentence around a match (at most 40 characters each side)."""
    lo = max(0, start - 40)
    cut = [m.end() for m in _CLAUSE_END.finditer(t, lo, start)]
    lo = cut[-1] if cut else lo
    m = _CLAUSE_END.search(t, end, min(len(t), end + 40))
    return t[lo : m.start() if m else min(len(t), end + 40)]
