"""Request type (投诉/举报/求助/咨询/建议/表扬) and urgency from what the words mean.

No labels are shipped for these, so they are weighted keyword rules; the title counts double.
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

_URGENT: list[tuple[str, str]] = [
    (
        "燃气",
        r"(?:燃气|煤气|天然气|液化气|气罐)(?:.{0,6})(?:泄漏|泄露|漏气|漏了|味道很大|爆炸)|漏气|闻到.{0,4}(?:煤气|燃气|天然气)",
    ),
    ("火灾", r"着火|起火|失火|火灾|火情|燃烧|冒烟|浓烟|爆炸|烧起来"),
    (
        "坍塌",
        r"坍塌|倒塌|垮塌|塌方|塌陷|塌了|倾斜|开裂.{0,6}(?:危险|随时)|随时(?:可能|会)(?:倒|塌|掉|垮)|危房|摇摇欲坠|高空坠物|掉下来",
    ),
    (
        "洪涝",
        r"洪水|被淹|淹了|淹没|内涝|决堤|溃坝|溃堤|山洪|泥石流|滑坡|积水.{0,6}(?:进屋|进家|漫|齐腰|过膝)|水漫",
    ),
    (
        "暴力",
        r"打人|殴打|被打|持刀|砍人|砍伤|行凶|杀人|杀了|威胁.{0,6}(?:杀|命|砍)|家暴|家庭暴力|暴力|绑架|劫持|抢劫|围殴|斗殴|报复",
    ),
    (
        "儿童",
        r"(?:孩子|小孩|儿童|婴儿|幼儿|学生).{0,8}(?:被困|走失|失踪|被锁|锁在|虐待|被打|溺水|坠楼|危险|受伤|没人管|被拐)|虐童|虐待儿童|拐卖",
    ),
    (
        "生命危险",
        r"跳楼|自杀|轻生|不想活|生命危险|危及生命|人命|昏迷|休克|中毒|窒息|触电|漏电|电线.{0,6}(?:掉|断|裸露|垂)|"
        r"井盖.{0,6}(?:丢|缺失|没了|被偷|破损|塌陷)|困在电梯|被困电梯|电梯.{0,6}(?:被困|困人|坠落)|救命|急救|溺水|重伤|死亡|出人命",
    ),
]
_URGENT_COMPILED = [(k, re.compile(p)) for k, p in _URGENT]
_NEGATED = re.compile(r"没有|并未|不会|防止|预防|避免|以免|防范|演练|宣传|培训|排查")


def request_type(text: str, title: str = "") -> tuple[str, float, dict[str, float]]:
    scores = dict(_PRIOR)
    for src, mult in ((title, 2.0), (text[:1500], 1.0)):
        if not src:
            continue
        for label, rules in _RT_COMPILED.items():
            for pat, w in rules:
                n = len(pat.findall(src))
                if n:
                    scores[label] += mult * w * min(n, 3) ** 0.5
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    total = sum(max(v, 0.0) for v in scores.values()) or 1.0
    best, s = ranked[0]
    conf = s / total
    return best, round(min(conf, 0.99), 3), scores


def urgency(text: str) -> tuple[bool, str]:
    """True with the reason (燃气/火灾/坍塌/洪涝/暴力/儿童/生命危险) when the text describes a danger."""
    t = text[:3000]
    for kind, pat in _URGENT_COMPILED:
        for m in pat.finditer(t):
            if _NEGATED.search(t[max(0, m.start() - 6) : m.start()]):
                continue
            return True, f"{kind}: {m.group()}"
    return False, ""
