"""Request type / urgency on the annotated examples, and PII masking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nlu.pii import find_pii, mask_pii
from nlu.rules import request_type, rule_points, urgency

EVAL = Path(__file__).resolve().parents[2] / "nlu" / "data" / "eval"


def _rows() -> list[dict]:
    return [
        json.loads(x)
        for x in (EVAL / "request_type.jsonl").read_text(encoding="utf-8").splitlines()
        if x.strip()
    ]


def test_request_type_accuracy_on_written_examples() -> None:
    rows = _rows()
    assert len(rows) >= 60
    ok = sum(request_type(r["text"], r["title"])[0] == r["request_type"] for r in rows)
    assert ok / len(rows) >= 0.75


def test_urgency_recall_on_written_examples() -> None:
    rows = _rows()
    urgent = [r for r in rows if r["urgent"]]
    hit = sum(urgency(r["title"] + "。" + r["text"])[0] for r in urgent)
    assert hit / len(urgent) >= 0.8


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("楼道里煤气味很重，好像燃气泄漏了", "燃气"),
        ("对面楼着火了，浓烟很大", "火灾"),
        ("老房子墙体开裂，随时可能倒塌", "坍塌"),
        ("暴雨后地下室被淹，积水进屋", "洪涝"),
        ("邻居持刀威胁要砍人", "暴力"),
        ("一个小孩被锁在车里，没人管", "儿童"),
    ],
)
def test_urgency_kinds(text: str, kind: str) -> None:
    ok, reason = urgency(text)
    assert ok and reason.startswith(kind)


def test_not_urgent() -> None:
    assert not urgency("请问公积金怎么提取")[0]
    assert not urgency("社区组织了消防演练和防火宣传")[0]


def test_request_types() -> None:
    assert request_type("我要举报一家黑作坊无证经营，偷排污水")[0] == "举报"
    assert request_type("请问新生儿医保怎么办理，需要什么材料？")[0] == "咨询"
    assert request_type("建议在小区门口增设公交站")[0] == "建议"
    assert request_type("感谢社区网格员，为他们点赞")[0] == "表扬"
    # a negated or a wished-for virtue is no praise
    assert rule_points("医院不负责任")["表扬"] == 0 and rule_points("希望相关部门能及时解决")["表扬"] == 0
    assert rule_points("他们及时解决了问题，很负责任")["表扬"] > 0
    assert request_type("家里老人重病，生活困难，求助")[0] == "求助"
    assert request_type("物业乱收费，态度恶劣，投诉")[0] == "投诉"


def test_pii_masking() -> None:
    text = (
        "我叫张三，电话13812345678，座机0731-84567890，身份证43010219900101123X，"
        "车牌湘A12345，新能源湘AD12345，邮箱zhang.san@163.com，工单12345-20261127-000123"
    )
    masked = mask_pii(text)
    for secret in (
        "13812345678",
        "0731-84567890",
        "43010219900101123X",
        "湘A12345",
        "湘AD12345",
        "zhang.san@163.com",
    ):
        assert secret not in masked
    assert "12345-20261127-000123" in masked  # ticket numbers are not personal data
    kinds = [m.kind for m in find_pii(text)]
    assert (
        kinds.count("phone") == 2 and "id_number" in kinds and kinds.count("plate") == 2 and "email" in kinds
    )
    assert mask_pii("") == "" and mask_pii("没有个人信息") == "没有个人信息"
    assert "[电话]" in mask_pii("打 +86 139-1234-5678 找我")


def test_pii_masks_every_number_in_a_long_text() -> None:
    """A long text full of numbers is masked whole (speed is the benchmarks' business; this
    checks that nothing is left over and no pattern backtracks without end)."""
    text = "我的电话是13812345678，身份证430102199001011234。" * 500
    masked = mask_pii(text)
    assert "13812345678" not in masked and "430102199001011234" not in masked
    assert len(find_pii(text)) == 1000


@pytest.mark.parametrize(
    "text",
    [
        # sentences of real messages (messages.csv), shortened
        "A市A4区珠江郦城探香里5栋18楼非法装修，把两套房打通，违法拆除了承重墙，对楼下所有业主生命安全造成极大威胁",
        "导致一路之隔的雅典凯盛庭9栋楼房受到不同程度的损害，不仅整体房屋下沉，外墙体严重开裂",
        "还有裸露在户外的主电缆，都是隐患",
        "乘坐电梯下楼，途中被关电梯里面，半个小时后，又有老人被关电梯里面",
        "电梯质量问题，发生多次掉层事故，在乘坐电梯时直接从22楼掉到了8楼",
        # round 8: the kinds real7's urgent messages showed
        "再次反映A市兴和社区廉租房漏水导致电路起火的问题",
        "雅岛咖啡占用小区公共绿化放置易燃易爆危险化学品",
        "入住后却遭开发商组织涉黑人员恐吓",
        "我儿子在十五中读初中，短短一年，就遭遇了两次校外不良少年的敲诈勒索",
        "大雪后半个月的时间，我们小区的生活用水都能闻到刺鼻的气味",
        "采石场炸药震坏村民房屋致开裂",
        "一警察因病现急需0型RH阴性血，情况紧急",
        "楼上独居老人好几天没出门了，敲门没反应，担心出意外",
        # round 10: acute emergencies as a citizen writes them in a chat (written for this test)
        "车库里有人给电瓶充电，现在电瓶一直冒烟，整个楼道都是焦糊味",
        "隔壁那户在家里囤了好几箱烟花爆竹，还在屋里抽烟",
        "他喝醉了拿着菜刀在门口骂，说要砍死我们",
        "催债的人往我家门上泼红油漆，还说今晚要放火",
        "我表妹被骗进传销窝，手机被收了，被关在一间出租屋里不让出门",
        "楼下那家又在打孩子，孩子一直哭喊求饶",
        "我女儿下午放学到现在还没回家，电话也联系不上",
        "我爸突然倒在地上抽搐，叫不醒，救护车还没到",
        "我妈喝了农药，正在镇卫生院抢救",
        "厨房燃气管接头嘶嘶地响，还有股味道",
        "单元门口一进来就是一股臭鸡蛋味，越来越浓",
        # round 11: what the fourth writer's chat messages showed the rules lacked (written for this test)
        "走廊里那个插排一直发烫，现在有股烧焦的塑料味，插座边上都发黑了",
        "加气站门口有小孩在放鞭炮，火星子乱飞",
        "商场外墙那块大招牌被风吹得晃来晃去，下面全是人",
        "工地上吊的砖掉下来砸在了路边的电动车上",
        "河堤被挖沙的掏空了一大块，河水还在涨",
        "他在电话里说今晚要来把我砍死，我一个人在家",
        "小区湖面结的冰很薄，好几个孩子在冰上跑",
        "宝宝刚才误吞了一颗磁珠，现在一直哭",
        "我奶奶有点糊涂，早上出去买菜到现在还没回家，手机也没带",
        "我爸吃着饭突然说不出话，嘴也歪了",
        "屋里烧着炭盆，一家人都头晕想吐",
        "化工厂那边飘过来的气味呛得眼睛都睁不开",
        "有个小孩掉进池塘里了，快来人",
        "刚看到一辆三轮车上挤了十几个孩子，在国道上跑",
        # round 12: kinds the written chat sets a-f showed the rules lacked (written for this test)
        "单元楼道里一股很浓的煤气味，不知道是哪家的",
        "小区电梯停在8楼和9楼中间，我爸困着出不来",
        "今天坐电梯突然往下一沉，掉了好几层才停",
        "幼儿园中午吃完饭十几个孩子上吐下泻",
        "井里打上来的水喝了以后全家都拉肚子",
        "雨太大了，屋里的水已经淹到膝盖了",
        "对面楼有个小孩爬到窗台外面坐着，大人不在",
        "我表哥说手机被收了，他们不让他出门",
        "前面那辆车的司机喝多了还在开，一路走S形",
        "停电快三个小时了，我爸的制氧机用不了",
        "我妈在厨房摔倒了起不来，我在外地",
        "我们在山里走岔了路，天快黑了",
        "公交车后面一直冒黑烟，车里全是焦糊味",
        "有人在地下车库正在撬车门",
        "楼上暖气管爆了，热水一直往我家屋里灌，淹得到处都是",
    ],
)
def test_urgent_now(text: str) -> None:
    assert urgency(text)[0]


@pytest.mark.parametrize(
    "text",
    [
        "2017年百年难遇的洪水，致使铜钱巷、排子巷绝大部分居民遭遇重大损失，希望对下水管道提前清淤",  # past
        "小区消防通道被占，一旦发生火灾，后果不堪设想",  # hypothetical
        "关于鉴定c级危房是否可以异地搬迁或安置点建房",  # a policy question
        "交房后发现墙面有几条裂缝，瓷砖空鼓，要求开发商维修",  # cracks without a sign of danger
        "刚从网上看到A2区水泥罐体发生坍塌事故，这是血的教训",  # news elsewhere
        "医药公司侵吞百姓的救命钱",  # a figure of speech
        "上个月山洪把我家的房子冲坏了，想问灾后重建补助怎么申请",  # last month
        "镇上有人搞传销，希望有关部门关注一下",  # a pyramid scheme, nobody held
        "楼下大排档每天晚上都要烧烤到凌晨，油烟太大",  # 要烧 (烧烤) is not a threat
        "我家孩子上周在商场走丢过一次，后来在保安室找到了",  # found already
        "昨天隔壁楼起火了，火早就灭了，想问问熏黑的外墙谁来刷",  # the fire is out
        "前年冬天邻居家烧炭取暖头晕，现在还想问问怎么装暖气",  # the past
        "公司说要把我辞退，我想问问赔偿怎么算",  # 要把我... is not a threat to life
        "每次看到小区门口那根电线杆都觉得有点歪，建议检查一下",  # a suggestion, nothing moving
        "孩子发烧烧到38.7，想问问哪个医院晚上有儿科",  # 烧到 a temperature, not a fire spreading
        "去年冬天电梯困过人，现在想问问年检报告在哪查",  # the past
        "楼下夜宵摊到凌晨三点，食客喝多了大吵大闹",  # drunk diners, nobody driving
    ],
)
def test_not_urgent_past_imagined_or_figurative(text: str) -> None:
    assert not urgency(text)[0], urgency(text)[1]
