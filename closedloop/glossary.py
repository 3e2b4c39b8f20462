"""The method's terms in one place: English, Chinese, and the package name that implements each.

Reports and notebooks take their headings and labels from here (``label(key, language)``), so a
report in Chinese (``language="zh"``) uses the method's own words.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import pandas as pd

Language = Literal["en", "zh"]


class Term(NamedTuple):
    en: str
    zh: str
    package: str
    meaning: str


TERMS: dict[str, Term] = {
    "closed_loop": Term(
        "closed loop", "闭环", "closedloop", "the Check of one cycle writes the Plan of the next"
    ),
    "pdca": Term(
        "Plan, Do, Check, Act",
        "PDCA 循环",
        "closedloop.pdca",
        "the management loop of every campaign",
    ),
    "plan": Term("Plan", "计划", "closedloop.pdca.Plan", "targets set in advance, in numbers"),
    "do": Term("Do", "执行", "assignments", "the campaign as run: who got which arm"),
    "check": Term(
        "Check", "检查", "closedloop.pdca.check", "actuals against the targets and the holdout"
    ),
    "act": Term("Act", "处理", "closedloop.pdca.act", "the decisions, and the next plan"),
    "counting_heads": Term(
        "counting heads", "数人头", "closedloop.rfm", "plan growth by customers, not products"
    ),
    "pyramid": Term(
        "customer pyramid",
        "客户金字塔",
        "closedloop.rfm.pyramid",
        "tiers by share of customers ranked by spend",
    ),
    "member_tiers": Term(
        "membership tiers",
        "会员等级",
        "closedloop.rfm.member_tiers",
        "platinum top 5%, gold next 15%, regular",
    ),
    "grading": Term(
        "grading", "分级", "closedloop.rfm.member_tiers", "rank by value; decides benefits"
    ),
    "grouping": Term(
        "grouping",
        "分群",
        "closedloop.rfm.rfm_table (segment)",
        "split by attributes; decides the offer",
    ),
    "lifecycle": Term(
        "enter, active, sticky, valuable, recommend",
        "进 活 粘 值 荐",
        "closedloop.rfm.lifecycle_stage",
        "the member lifecycle",
    ),
    "cidr": Term(
        "contact, identify, data, react",
        "CIDR",
        "closedloop.kpi.touches_due",
        "the customer lifecycle integration model",
    ),
    "rfm": Term(
        "recency, frequency, monetary",
        "RFM",
        "closedloop.rfm.rfm_table",
        "scores 1-5 and named segments",
    ),
    "support": Term("support", "支持度", "closedloop.basket.rules", "P(A and B)"),
    "confidence": Term("confidence", "置信度", "closedloop.basket.rules", "P(B | A)"),
    "lift_basket": Term(
        "lift", "提升度", "closedloop.basket.rules", "P(B | A) / P(B); recommend only above 1"
    ),
    "member_share": Term(
        "member share",
        "会员占比",
        "closedloop.kpi.member_kpis",
        "share of transactions made by members",
    ),
    "online_rate": Term(
        "online rate", "在线率", "closedloop.kpi.member_kpis", "share of members reachable online"
    ),
    "repurchase_rate": Term(
        "repurchase rate",
        "复购率",
        "closedloop.kpi.member_kpis",
        "share of buyers who bought again",
    ),
    "items_per_basket": Term(
        "items per basket", "连带率", "closedloop.kpi.member_kpis", "items per transaction"
    ),
    "churn": Term(
        "churn",
        "流失",
        "closedloop.rfm.churn_severity",
        "light / medium / heavy, against the customer's own rhythm",
    ),
    "churn_light": Term("light churn", "轻度流失", "closedloop.rfm.churn_severity", ""),
    "churn_medium": Term("medium churn", "中度流失", "closedloop.rfm.churn_severity", ""),
    "churn_heavy": Term("heavy churn", "重度流失", "closedloop.rfm.churn_severity", ""),
    "private_domain": Term(
        "private domain", "私域", "customers.online", "members the brand can reach directly"
    ),
    "public_domain": Term("public domain", "公域", "events.channel", "paid media and platforms"),
    "channel_qr": Term(
        "channel QR code",
        "渠道二维码",
        "closedloop.funnel.attribution",
        "records the source of each contact",
    ),
    "funnel": Term("funnel", "漏斗", "closedloop.funnel.funnel", "conversion at every stage"),
    "holdout": Term("holdout", "对照组", "plan.control", "customers who did not get the campaign"),
    "lift": Term(
        "lift over the holdout",
        "提升",
        "closedloop.lift.bayesian_lift",
        "arm minus control, with its posterior",
    ),
    "bayes": Term(
        "Bayes' theorem", "贝叶斯定理", "closedloop.lift", "posterior = prior × likelihood"
    ),
    "clv": Term(
        "customer lifetime value", "客户终身价值", "closedloop.clv", "BG/NBD × Gamma-Gamma"
    ),
    "roi": Term(
        "return on investment", "投资回报率", "closedloop.lift.roi", "incremental margin / cost"
    ),
    "target": Term("target", "目标", "plan.targets", ""),
    "actual": Term("actual", "实际", "", ""),
    "met": Term("met", "达成", "", ""),
    "missed": Term("missed", "未达成", "", ""),
    "probability_met": Term("P(met)", "达成概率", "", "posterior probability the target was met"),
    "scorecard": Term("Scorecard", "目标达成", "closedloop.pdca.Check.scorecard", ""),
    "segment": Term("segment", "分群", "", ""),
    "arm": Term("arm", "实验组", "assignments.arm", ""),
    "conversion": Term(
        "conversion", "转化率", "outcomes.converted", "share of customers who bought in the period"
    ),
    "revenue": Term("revenue per customer", "人均销售额", "outcomes.revenue", ""),
    "visit": Term("visit rate", "到访率", "outcomes.visited", ""),
    "incremental_revenue": Term(
        "incremental revenue", "增量销售额", "closedloop.lift", "abs lift × customers in the arm"
    ),
    "srm": Term(
        "sample-ratio check",
        "样本比例检验",
        "closedloop.lift.srm_check",
        "did the split match the plan?",
    ),
    "header": Term("Campaign", "活动", "", ""),
    "plan_recap": Term("Plan recap", "计划回顾", "", ""),
    "who_responded": Term("Who responded", "响应人群", "closedloop.lift.lift_by_segment", ""),
    "customer_base": Term("Customer base", "客户基础", "closedloop.rfm", ""),
    "cross_sell": Term("Cross-sell", "关联销售", "closedloop.basket", ""),
    "history": Term(
        "PDCA history", "PDCA 历史", "reports/ledger.csv", "earlier cycles of this campaign"
    ),
    "appendix": Term("Appendix", "附录", "", ""),
    "data_quality": Term(
        "data quality",
        "数据质量",
        "closedloop.io",
        "methods are only methods; data quality is the foundation",
    ),
}


def label(key: str, language: Language = "en", both: bool = False) -> str:
    """The term in ``language``; with ``both``, English with the Chinese in brackets."""
    term = TERMS[key]
    if both:
        return f"{term.en} ({term.zh})"
    return term.zh if language == "zh" else term.en


def glossary() -> pd.DataFrame:
    """The glossary as a table: key, English, Chinese, package name, meaning."""
    return pd.DataFrame(
        [(key, *term) for key, term in TERMS.items()],
        columns=["key", "en", "zh", "package", "meaning"],
    )
