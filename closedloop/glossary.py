"""The method's terms in one place: English, Chinese, and the package name that implements each.

Reports and notebooks take their headings and labels from here (``label(key, language)``), so a
report in Chinese (``language="zh"``) uses the method's own words.
"""

from __future__ import annotations

import functools
import re
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
    "check_report": Term(
        "PDCA check report",
        "PDCA 检查报告",
        "closedloop.report.run",
        "one campaign's Check as a page: the scorecard, the lift, the next plan",
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
        "grading",
        "分级",
        "closedloop.rfm.member_tiers",
        "rank by value (membership tiers, the pyramid); decides benefits",
    ),
    "grouping": Term(
        "grouping",
        "分群",
        "closedloop.groups.groups",
        "split by attributes (category preference, personal style, channel preference);"
        " decides the offer",
    ),
    "lifecycle": Term(
        "enter, active, sticky, valuable, recommend",
        "进 活 粘 值 荐",
        "closedloop.rfm.lifecycle_stage",
        "the member lifecycle, mapped onto the pyramid's layers from the bottom up",
    ),
    "cidr": Term(
        "contact, identify, data, react",
        "CIDR",
        "closedloop.funnel.attribution, closedloop.rfm.member_tiers, closedloop.groups.groups,"
        " closedloop.rfm.rfm_table, closedloop.kpi.touches_due, closedloop.rfm.churn_severity,"
        " closedloop.rfm.upgrade_candidates, closedloop.contacts.contact_list",
        "Contact (where the customer is met: the source channel) → Identify (new or existing,"
        " which tier, which group) → Data (transactional and behaviour tags: RFM) → React"
        " (planned and instant triggers: lifecycle touches, win-back, upgrade; this week's"
        " contact list)",
    ),
    "contact_list": Term(
        "contact list",
        "联络名单",
        "closedloop.contacts.contact_list",
        "who to contact this week, why, through which channel",
    ),
    "contact_onboarding": Term(
        "onboarding contact",
        "新客跟进",
        "closedloop.kpi.touches_due",
        "day 0, 3, 7, 15, 30, 60, 90, 150 after joining",
    ),
    "contact_greeting": Term(
        "greeting contact",
        "问候",
        "closedloop.contacts.contact_list (birthday, anniversary)",
        "birthday and join anniversary in the week",
    ),
    "contact_opportunity": Term(
        "opportunity contact",
        "商机",
        "closedloop.contacts.contact_list (audience, next_best_offer)",
        "bought X before; the basket rules' next best offer",
    ),
    "contact_winback": Term(
        "win-back contact",
        "挽回",
        "closedloop.contacts.contact_list (winback_light / medium / heavy)",
        "customers showing churn, each level its own offer",
    ),
    "contact_reminder": Term(
        "reminder contact",
        "提醒",
        "closedloop.contacts.contact_list (points_expiring)",
        "points about to expire",
    ),
    "contact_upgrade": Term(
        "upgrade contact",
        "升级",
        "closedloop.rfm.upgrade_candidates",
        "close to the next tier; chance x contribution first",
    ),
    "reachability": Term(
        "reachability",
        "可触达",
        "customers.reach_wecom / reach_group / reach_app / reach_sms",
        "one-to-one > group > official account / app > SMS",
    ),
    "audience_history": Term(
        "audience by purchase history",
        "按购买记录选人",
        "closedloop.audiences.bought",
        "bought an item, category or brand in a window, not since",
    ),
    "points_programme": Term(
        "points programme",
        "积分计划",
        "closedloop.points",
        "issue 1 yuan = 1 point, redeem 100 points = 1 yuan",
    ),
    "points_balance": Term(
        "points balance",
        "积分余额",
        "closedloop.points.balances",
        "earned - redeemed - expired, redemptions FIFO",
    ),
    "rolling_expiry": Term(
        "rolling expiry",
        "一年制",
        "closedloop.points.balances (rule='rolling')",
        "each point lives 365 days",
    ),
    "calendar_expiry": Term(
        "calendar expiry",
        "历年制",
        "closedloop.points.balances (rule='calendar')",
        "all points earned in a year expire on 31 December",
    ),
    "points_expiring": Term(
        "points expiring",
        "积分即将过期",
        "closedloop.points.balances (expiring)",
        "points whose last day falls within N days",
    ),
    "threshold_groups": Term(
        "points threshold groups",
        "积分门槛分组",
        "closedloop.points.threshold_groups",
        "A close, B above, C active, D far; closest first",
    ),
    "points_threshold": Term(
        "points threshold",
        "积分门槛",
        "closedloop.points.threshold_groups",
        "the balance that moves behaviour (1500 in the method); activation targets sit near it",
    ),
    "points_group_a": Term(
        "group A: close",
        "A 组：接近门槛",
        "closedloop.points.threshold_groups",
        "within 300 points below the threshold (1200 to 1499 at 1500); activate first",
    ),
    "points_group_b": Term(
        "group B: above",
        "B 组：已过门槛",
        "closedloop.points.threshold_groups",
        "at or above the threshold (2000 at 1500) and not active; a reminder turns points into a visit",
    ),
    "points_group_c": Term(
        "group C: active",
        "C 组：已活跃",
        "closedloop.points.threshold_groups",
        "already active in the programme (redeemed in the last 90 days); keep them going",
    ),
    "points_group_d": Term(
        "group D: far",
        "D 组：距门槛较远",
        "closedloop.points.threshold_groups",
        "more than 300 points below the threshold and not active",
    ),
    "issue_ratio": Term(
        "issue ratio",
        "积分发放比例",
        "closedloop.points.programme_cost",
        "about 1 yuan spent = 1 point",
    ),
    "redemption_ratio": Term(
        "redemption ratio",
        "积分兑换比例",
        "closedloop.points.programme_cost",
        "about 100 points = 1 yuan of redeemed value",
    ),
    "cost_rate": Term(
        "average cost rate",
        "平均成本率",
        "closedloop.points.programme_cost",
        "what one yuan of redeemed value costs the brand",
    ),
    "three_stage_activation": Term(
        "three-stage activation",
        "三段式激活（侦测、重点突破、扩大战果）",
        "closedloop.points.threshold_groups",
        "detect the threshold, break through closest first, extend the win",
    ),
    "redemption_rate": Term(
        "redemption rate",
        "兑换率",
        "closedloop.points.programme_cost",
        "share of issued points actually used",
    ),
    "points_cost": Term(
        "points programme cost",
        "积分成本",
        "closedloop.points.programme_cost",
        "redemption value x average cost rate x redemption rate",
    ),
    "rfm": Term(
        "recency, frequency, monetary",
        "RFM",
        "closedloop.rfm.rfm_table",
        "scores 1-5 and named segments; M is the average per transaction unless total is chosen",
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
        "light / medium / heavy, by how far F and M fell from the previous period to this one",
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
        "Bayes' theorem",
        "贝叶斯定理",
        "closedloop.basket.conditional",
        "P(B | A) = P(A, then B) / P(A) against the prior P(B): does behaviour B become likelier"
        " after A? (the campaign posteriors of closedloop.lift rest on the same theorem)",
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
    "undefined": Term("undefined", "无法判断", "", ""),
    "follow_up": Term(
        "after the campaign",
        "扩大战果",
        "closedloop.follow_up.follow_up",
        "treated against holdout in the days after the period: did the effect last",
    ),
    "progress": Term(
        "progress", "进度", "closedloop.progress.progress", "the campaign day by day, week by week"
    ),
    "ahead": Term(
        "ahead", "进度领先", "closedloop.scorecard", "an interim Check: likely to end above target"
    ),
    "on_track": Term(
        "on track", "进度正常", "closedloop.scorecard", "an interim Check: may go either way"
    ),
    "behind": Term(
        "behind", "进度落后", "closedloop.scorecard", "an interim Check: likely to end below target"
    ),
    "not_paced": Term(
        "not paced",
        "暂不判断进度",
        "closedloop.scorecard",
        "an interim Check: visits and funnel stages, whose curve over the period nothing gives",
    ),
    "early_stop": Term(
        "stopping rule",
        "提前停止规则",
        "closedloop.early_stop",
        "an interim Check ships the best arm early, or stops a clearly worse one",
    ),
    "probability_met": Term("P(met)", "达成概率", "", "posterior probability the target was met"),
    "scorecard": Term("Scorecard", "目标达成", "closedloop.pdca.Check.scorecard", ""),
    "segment": Term(
        "segment", "分群", "", "a report's word for a group of customers; see grouping"
    ),
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
    "who_responded": Term(
        "Who responded", "响应人群", "closedloop.lift_segments.lift_by_segment", ""
    ),
    "customer_base": Term("Customer base", "客户基础", "closedloop.rfm", ""),
    "cross_sell": Term(
        "Cross-sell",
        "关联销售",
        "closedloop.basket.cross_sell",
        "recommend a pair only when lift > 1; among those, by confidence",
    ),
    "next_contacts": Term(
        "Next contacts",
        "下一步联络",
        "closedloop.pdca.next_contacts",
        "who to contact in the week after the Check, why and through which channel; no holdout"
        " customer",
    ),
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
    "stacking_bricks": Term(
        "stacking bricks",
        "垒砖头",
        "",
        "planning growth by products; the opposite of counting heads",
    ),
    "head_users": Term(
        "head users",
        "头部用户",
        "closedloop.rfm.head_share",
        "the few customers who make most of the revenue",
    ),
    "upgrade": Term(
        "upgrade opportunity",
        "提升（升级机会）",
        "closedloop.rfm.upgrade_candidates",
        "room for more purchase frequency or a higher tier; customers close to the next tier,"
        " the highest chance of upgrading × contribution first",
    ),
    "basket_analysis": Term(
        "basket analysis", "购物篮分析", "closedloop.basket", "which items are bought together"
    ),
    "churn_none": Term("no churn", "未流失", "closedloop.rfm.churn_severity", ""),
    "member_health": Term(
        "member health",
        "会员健康度",
        "closedloop.health",
        "the monthly check of the member-operations KPI tree against its targets",
    ),
    "kpi_tree": Term(
        "KPI tree against targets",
        "指标树对照目标",
        "closedloop.kpi.member_kpis",
        "member share, online rate, active members x frequency x ticket = contribution",
    ),
    "trends": Term("trends month by month", "逐月趋势", "closedloop.health.trend", ""),
    "pyramid_over_time": Term(
        "the pyramid over time", "金字塔走势", "closedloop.rfm.pyramid_over_time", ""
    ),
    "churn_screen": Term(
        "churn screen",
        "定期筛检",
        "closedloop.health.churn_screen",
        "customers by churn level now and a quarter ago: act at the light level",
    ),
    "revenue_moved": Term(
        "why revenue moved",
        "销售额为何变化",
        "closedloop.kpi.revenue_change",
        "each change split exactly into heads, frequency and ticket",
    ),
    "store_table": Term(
        "ranked by the gap to target",
        "按目标差距排名",
        "closedloop.health.rank_by_gap",
        "the sum of each KPI's shortfall as a share of its target",
    ),
    "traffic_loop": Term(
        "traffic loop",
        "流量闭环",
        "closedloop.funnel.attribution",
        "public domain to private domain, and insight back to the public domain",
    ),
}


#: the report's own wording, English -> Chinese (the method's terms come from TERMS)
PHRASES: dict[str, str] = {
    "funnel: touch": "漏斗：触达",
    "funnel: visit": "漏斗：到访",
    "funnel: register": "漏斗：注册",
    "funnel: purchase": "漏斗：购买",
    "When the effect appeared and whether it holds: day by day": "效果何时出现、是否持续：逐日",
    "week by week, by arm": "逐周，按分组",
    "Progress: conversion so far and the lift over the holdout": "进度：迄今的转化与相对对照组的提升",
    "conversion so far, by arm": "各分组迄今的转化率",
    "relative lift over the holdout so far (95% interval), once it has 10 buyers": "迄今相对对照组的提升（95% 区间），自对照组有 10 位购买者起",
    # the next contacts
    "contacts by type, member tier and channel": "按联络类型、会员等级和渠道的联络数",
    "the triggers behind most contacts, each with its strongest case": "联络最多的触发规则，各附最强的一例",
    "written beside this report for the SCRM import, one file per channel (and Parquet)": "写在本报告旁，供 SCRM 导入：每个渠道一个文件（另有 Parquet）",
    # report sentences and captions
    "cycle": "周期",
    "week": "周",
    "period": "活动期",
    "to": "至",
    "data as of": "数据截至",
    "run": "运行",
    "Objective": "目标类型",
    "audience": "目标人群",
    "arms": "分组",
    "everyone assigned": "全部分组客户",
    "value": "数值",
    "P(met): posterior probability that the target was reached": "达成概率：目标达成的后验概率",
    "relative lift with its 95% credible interval": "相对提升及其 95% 可信区间",
    "Posterior lift of each arm over the holdout (95% interval)": "各实验组相对对照组的提升（95% 区间）",
    "share of touched reaching each stage": "触达客户到达各阶段的比例",
    "Funnel by channel: step rates": "分渠道漏斗：逐级转化率",
    "Step conversion by channel and stage": "分渠道、分阶段的逐级转化率",
    "conversion uplift by segment, partially pooled": "分群转化提升（部分合并估计）",
    "Who responded: uplift by segment": "响应人群：分群提升",
    "12 months to": "12 个月，截至",
    "days to": "天，截至",
    "RFM segment migration over the campaign period": "活动期间 RFM 分群迁移",
    "bought A → offer B: lift > 1, by confidence": "买了 A → 推荐 B：提升度 > 1，按置信度排序",
    "Cross-sell rules for the next offer: lift > 1, by confidence": "下一次推荐的关联规则：提升度 > 1，按置信度排序",
    "each change with its reason": "每项调整及其理由",
    "The next plan is written beside this report as": "下一周期的计划已写在本报告旁：",
    "each target, cycle after cycle": "各目标逐个周期的结果",
    "PDCA history: each target, cycle after cycle": "PDCA 历史：各目标逐个周期的结果",
    "interim": "期中",
    "rows read, kept and dropped per table": "各表读取、保留和剔除的行数",
    "Definitions": "定义",
    "lineage": "数据来源",
    "Sample ratio as planned": "样本比例符合计划",
    "Sample ratio mismatch": "样本比例与计划不符",
    "The plan": "计划",
    "Data quality: all tables read in full, no rows dropped or after the as-of day, coverage complete": "数据质量：各表完整读取，无剔除行、无截止日之后的行，覆盖完整",
    "Data quality needs attention": "数据质量需要注意",
    # the Act step's reasons (closedloop.pdca.act)
    "is the best arm on conversion": "为转化最佳分组",
    "segments where a kept arm beats the holdout with P >=": "保留分组胜过对照组的概率 ≥ 此值的分群：",
    "reset to 95% of the best kept arm's observed conversion": "重设为保留分组中最佳观测转化率的 95%",
    "posterior quantile of": "后验分位数：",
    "the next cycle follows this one": "下一周期紧接本周期",
    "dropped": "停用",
    # column headers
    "target_value": "目标值",
    "status": "状态",
    "p_met": "达成概率",
    "basis": "口径",
    "metric": "指标",
    "n": "人数",
    "mean": "均值",
    "control_mean": "对照组均值",
    "control_customers": "对照组客户数",
    "rel_lift": "相对提升",
    "rel_lift_low": "相对提升下限",
    "rel_lift_high": "相对提升上限",
    "abs_lift": "绝对提升",
    "abs_lift_low": "绝对提升下限",
    "abs_lift_high": "绝对提升上限",
    "p_better": "优于对照概率",
    "expected_loss": "期望损失",
    "incremental": "增量",
    "cost": "成本",
    "incremental_margin": "增量毛利",
    "roi_low": "投资回报率下限",
    "roi_high": "投资回报率上限",
    "p_target": "达标概率",
    "stage": "阶段",
    "small": "样本小",
    "rank": "排名",
    "tier": "层级",
    "customer_share": "客户占比",
    "revenue_share": "销售额占比",
    "avg_ticket": "客单价",
    "avg_frequency": "平均购买次数",
    "threshold": "门槛",
    "rule": "规则",
    "field": "字段",
    "reason": "理由",
    "table": "表",
    "source": "来源",
    "rows_read": "读取行数",
    "rows_kept": "保留行数",
    "rows_dropped": "剔除行数",
    "refunds": "退款行数",
    "first_date": "最早日期",
    "last_date": "最晚日期",
    "current": "本次",
    "roi": "投资回报率",
    # figure titles and labels (whole phrases first, so no title comes out half translated)
    "Funnel: entities reaching each stage": "漏斗：到达各阶段的人数",
    "Step conversion: share of the previous stage, by group": "逐级转化率：占上一阶段的比例（分组）",
    "Customer pyramid: share of heads vs share of revenue": "客户金字塔：人数占比与销售额占比",
    "share of customers": "人数占比",
    "share of revenue": "销售额占比",
    "Migration: where customers moved": "迁移：客户去了哪里",
    "share of the before-row": "占活动前该行的比例",
    "Strongest cross-sell rules by lift": "按提升度排序的最强关联销售规则",
    "Cross-sell rules: lift > 1, by confidence": "关联销售规则：提升度 > 1，按置信度排序",
    "confidence = P(B | A)": "置信度 = P(B | A)",
    "All rules: lift against confidence (size = support)": "全部规则：提升度与置信度（点大小 = 支持度）",
    "Head-share curve: how few customers make most revenue": "人头占比曲线：少数客户贡献多数销售额",
    "customers ranked by spend": "按消费额排序的客户",
    "every customer equal": "人人相同",
    "cumulative share of revenue": "累计销售额占比",
    "share of customers (top first)": "客户占比（高价值在前）",
    "Revenue by pyramid tier over time (tiers fixed over the window)": "各金字塔层级的销售额走势（层级在窗口内固定）",
    "Churn levels: customers and revenue by severity": "流失程度：各级别的客户数与销售额",
    "customers by churn level": "各流失级别的客户数",
    "revenue: previous vs this period": "销售额：上期与本期",
    "mean monetary": "平均消费额",
    "F score (5 = most orders)": "F 分（5 = 次数最多）",
    "R score (5 = most recent)": "R 分（5 = 最近）",
    "posterior density": "后验密度",
    "Posterior of the relative lift over the holdout": "相对提升的后验分布",
    "model": "模型",
    # scorecard bases and figure wording
    "conversion of contacted customers": "触达客户的转化率",
    "visits of contacted customers": "触达客户的到访率",
    "not measured before the period ends: an interim Check counts its outcomes from the"
    " transactions, and visits are in the outcomes file": "期末前不计：期中检查从交易数据计算结果，到访数据在结果文件中",
    "all arms against the holdout": "全部实验组对比对照组",
    "share of touched reaching the stage": "触达客户到达该阶段的比例",
    "Lift over the holdout: observed and 95% credible interval": "相对对照组的提升：观测值与 95% 可信区间",
    "relative lift": "相对提升",
    "lift in percentage points": "提升（百分点）",
    "lift per customer": "人均提升",
    "Lift by segment on": "分群提升：",
    "ranked by credible uplift": "按可信提升排序",
    "vs holdout": "对比对照组",
    "entities": "人数",
    "step rate": "逐级转化率",
    "customer pyramid": "客户金字塔",
    "share of customers  ←   |   →  share of revenue": "人数占比  ←   |   →  销售额占比",
    "tier (customers ranked by spend)": "层级（按消费额排序）",
    "customers": "客户数",
    "customers before": "活动前分群",
    "segment before": "活动前分群",
    "segment after": "活动后分群",
    "Segment migration": "分群迁移",
    "lift = P(B | A) / P(B)": "提升度 = P(B | A) / P(B)",
    "PDCA history": "PDCA 历史",
    "conversion rate": "转化率",
    "visit rate": "到访率",
    "relative lift min": "相对提升下限",
    "funnel": "漏斗",
    "converted": "转化",
    "visited": "到访",
    "revenue": "销售额",
    "control": "对照组",
    "binary": "二元",
    "continuous": "连续",
    # figure wording met in the method tour (notebooks/00_method_tour.ipynb)
    "previous period": "上期",
    "this period": "本期",
    "of customers": "的客户",
    "of revenue": "的销售额",
    "purchases in the calibration period (repeat purchase days)": "校准期的购买次数（重复购买天数）",
    "mean purchases per customer in the holdout": "验证期的人均购买次数",
    "P(better)": "P(优于对照组)",
    "visit": "到访",
    "spend": "消费额",
    "step": "逐级",
    "cum": "累计",
    "conf": "置信度",
    "supp": "支持度",
    # member operations: why revenue moved, KPIs against targets
    "channel": "渠道",
    "Why revenue moved": "销售额为何变化",
    "heads x frequency x ticket": "人数 × 频次 × 客单价",
    "heads effect": "人数效应",
    "frequency effect": "频次效应",
    "ticket effect": "客单价效应",
    "revenue change": "销售额变化",
    "actual / target": "实际 / 目标",
    # the objectives' metrics and the follow-up (closedloop.objectives, closedloop.follow_up)
    "baseline": "基线",
    "orders per contacted customer": "每位触达客户的购买次数",
    "revenue per order of contacted buyers": "触达客户中购买者的每单销售额",
    "contacted customers who joined in the period": "活动期内入会的触达客户",
    "recruits' first purchase": "新会员入会后的首次购买",
    "contacted customers buying twice within": "触达客户中两次购买（间隔不超过）",
    "days": "天",
    "no recruits": "无新会员",
    "no contacted buyer": "无触达客户购买",
    "contacted customers reaching": "到达以下阶段的触达客户：",
    "After the campaign": "活动之后",
    "days after the period": "活动结束后天数",
    "not yet reached": "尚未到达",
    "bought in the window": "窗口内购买",
    "spend in the window": "窗口内消费额",
    "came back": "活动期购买者再次购买",
    "bought in the window: uplift (percentage points)": "窗口内购买：提升（百分点）",
    "spend in the window: lift per customer": "窗口内消费额：人均提升",
    "After the campaign: did the effect last?": "活动之后：效果是否持续？",
    "Each arm against the holdout after the period (95% interval)": "活动结束后各实验组对比对照组（95% 区间）",
    "each arm against the holdout from day 1 to the window's last day after the period": (
        "活动结束后第 1 天至时间窗最后一天，各实验组对比对照组"
    ),
    "KPI tree against targets": "指标树对照目标",
    # the member-health report (closedloop.health, closedloop.health_sections)
    "no data": "无数据",
    "month": "月份",
    "Trends month by month": "逐月趋势",
    "buyers": "购买客户数",
    "orders per buyer": "人均单数",
    "average ticket": "客单价",
    "member share": "会员占比",
    "Churn screen: customers by churn level": "定期筛检：各流失级别的客户数",
    "a quarter ago": "一季度前",
    "now": "当前",
    "lower is better": "越低越好",
    "store": "门店",
    "guide": "导购",
    "city": "城市",
    "KPI tree: all members = new + existing + not bought yet (members, active members, contribution and member share add up; rates are each column's own)": "指标树：全部会员 = 新客 + 老客 + 尚未购买（会员数、活跃会员数、会员贡献与会员占比可相加；各比率为该列自身的值）",
    "the KPI tree for the month against its targets": "本月指标树对照目标",
    "customers by churn level, now and a quarter ago": "各流失级别的客户数：当前与一季度前",
    "last 12 months, revenue by tier (tiers fixed over the last year)": "近 12 个月各层级的销售额（层级按近一年固定）",
    "each group's change split into heads, frequency and ticket": "各组的变化拆分为人数、频次与客单价效应",
    "gap: the sum of each KPI's shortfall as a share of its target (ahead counts 0); furthest behind first": "差距：各指标未达部分占目标比例之和（超额计 0）；差距最大者在前",
    "files read and rows kept": "读取的文件与保留的行数",
    "each KPI as a share of its target: 1 is on target": "各指标占目标的比例：1 即达标",
    "the last 12 months, members and anonymous receipts": "近 12 个月，含会员与匿名小票",
}

#: the member-health report's sentences, English and Chinese, ``{name}`` the values
SENTENCES: dict[str, dict[str, str]] = {
    "targets_met": {
        "en": "{met} of {n} targets met for {month}.",
        "zh": "{month}：{n} 项目标中达成 {met} 项。",
    },
    "no_targets": {
        "en": "No targets set: add them to the targets file ({file}).",
        "zh": "未设定目标：请在目标文件（{file}）中添加。",
    },
    "furthest_behind": {
        "en": "The {by} furthest behind its targets: {group} (gap {gap}, the sum of its KPIs'"
        " shortfalls as shares of their targets).",
        "zh": "离目标最远的{by}：{group}（差距 {gap}，即各指标未达部分占目标的比例之和）。",
    },
    "kpi_furthest_behind": {
        "en": "The KPI furthest behind: {kpi}, {actual} against a target of {target}.",
        "zh": "离目标最远的指标：{kpi}，实际 {actual}，目标 {target}。",
    },
    "anonymous": {
        "en": "{n} anonymous receipts (no member card) count as non-member orders in member"
        " share and nowhere else.",
        "zh": "{n} 张匿名小票（未出示会员卡）在会员占比中计为非会员订单，其余指标不计入。",
    },
    "home_store": {
        "en": "Each member counts once, in her home {by}: the customers' {column} where given,"
        " else the {by} of most purchases in the {days} days to the month's end, ties by the"
        " latest purchase, and for a member who never bought the customers' {joined} where"
        " given; (none) holds the members with none of these. Members, active members, frequency,"
        " ticket, contribution, churn and reach are those members' over all their purchases;"
        " member share, orders and revenue are the {by}'s own receipts, where the money was"
        " spent.",
        "zh": "每位会员只计入一个归属{by}：客户表中有 {column} 时取之，否则为截至月末 {days} 天内"
        "购买次数最多的{by}，次数相同取最近一次购买所在的{by}；从未购买的会员取客户表中的 {joined}"
        "（入会{by}）。（无）：以上皆无的会员。会员数、"
        "活跃会员数、频次、客单价、会员贡献、流失率与触达率按这些会员的全部购买计算；会员占比、"
        "单数与销售额是该{by}自身的小票，即消费发生之处。",
    },
    "no_conversion_by": {
        "en": "Join → first purchase conversion by {by} is not available: {n} recruits of the"
        " month have no purchase and no {column} in the customers, so they belong to no {by},"
        " and counting only those who bought would show 100% everywhere.",
        "zh": "无法按{by}给出入会→首购转化率：本月有 {n} 名新入会会员尚未购买，客户表中也没有"
        "其 {column}，无法归入任何{by}；只计已购买者会使每个{by}都显示 100%。",
    },
    "no_by": {
        "en": "These data have no {by} column, so the {by} table and the {by} split of why"
        " revenue moved are left out.",
        "zh": "这些数据没有{by}字段，因此省略按{by}的表格和按{by}拆分的销售额变化。",
    },
    "revenue_moved": {
        "en": "Revenue of identified customers went from {before} ({b0} to {b1}) to {after}"
        " ({change}): heads {heads}, frequency {frequency}, ticket {ticket}; the three add up"
        " to the change.",
        "zh": "已识别客户的销售额从 {before}（{b0} 至 {b1}）变为 {after}（{change}）：人数效应"
        " {heads}，频次效应 {frequency}，客单价效应 {ticket}；三者之和等于变化。",
    },
    "partial_month": {
        "en": "The last month runs to {asof} only.",
        "zh": "最后一个月只到 {asof}。",
    },
    # closedloop contacts, as it prints what it wrote
    "contacts_written": {
        "en": "contacts for the week from {asof}: {n} in {out}/",
        "zh": "自 {asof} 起一周的联络：{n} 条，已写入 {out}/",
    },
    "contacts_left_out": {"en": "left out: {left}", "zh": "未列入：{left}"},
    "contacts_note": {"en": "note: {note}", "zh": "注：{note}"},
    "screen": {
        "en": "Light churn is where to act: it is cheaper to keep a customer than to win one"
        " back. Heavy churn changed by {heavy} since {before}.",
        "zh": "轻度流失是最该行动的时候：留住客户比挽回客户便宜。自 {before} 以来，重度流失人数变化"
        " {heavy}。",
    },
}

#: member tiers and the new customers of :func:`closedloop.kpi.revenue_change`, as shown
TIER_NAMES = {
    "platinum": ("platinum", "铂金会员"),
    "gold": ("gold", "黄金会员"),
    "regular": ("regular", "普通会员"),
    "new": ("new (not tiered before)", "新客（上期未分级）"),
}


#: the named RFM segments (:data:`closedloop.rfm.SEGMENTS`) and migration's "(absent)" row, as
#: a Chinese report names them (RFM 客户分群)
RFM_SEGMENT_NAMES = {
    "champions": "重要价值客户",
    "loyal": "忠诚客户",
    "potential_loyalist": "潜在忠诚客户",
    "new": "新客户",
    "promising": "有潜力客户",
    "need_attention": "需要关注客户",
    "about_to_sleep": "即将沉睡客户",
    "at_risk": "有流失风险客户",
    "cant_lose": "不能失去的客户",
    "hibernating": "休眠客户",
    "lost": "已流失客户",
    "(absent)": "（不在该期）",
}


def rfm_segment_name(segment: str, language: Language = "en") -> str:
    """An RFM segment as shown: "about_to_sleep" -> "即将沉睡客户" in Chinese; English, and a
    segment of a replaced segment map, as it is."""
    return RFM_SEGMENT_NAMES.get(segment, segment) if language == "zh" else segment


def say(key: str, language: Language = "en", **values) -> str:
    """One of the report's :data:`SENTENCES` in ``language`` with its values filled in."""
    return SENTENCES[key][language].format(**values)


def tier_name(tier: str, language: Language = "en") -> str:
    """A member tier or pyramid tier as shown: "gold" -> "黄金会员", "top 2%" -> "前 2%"."""
    if tier in TIER_NAMES:
        return TIER_NAMES[tier][language == "zh"]
    if language == "zh" and tier.startswith("top "):
        return "前 " + tier.removeprefix("top ")
    return tier


#: the contact rules (:data:`closedloop.contacts.RULES`), channels and member tiers as the report
#: names them, English and Chinese (the contact types: :data:`closedloop.contacts.TYPES`)
CONTACT_WORDS: dict[str, tuple[str, str]] = {
    "onboarding": ("onboarding touch", "新客跟进节点"),
    "birthday": ("birthday", "生日"),
    "points_expiring": ("points about to expire", "积分即将过期"),
    "winback_light": ("light churn", "轻度流失"),
    "winback_medium": ("medium churn", "中度流失"),
    "winback_heavy": ("heavy churn", "重度流失"),
    "upgrade": ("close to the next tier", "接近升级"),
    "anniversary": ("join anniversary", "入会周年"),
    "audience": ("bought before", "曾购买"),
    "next_best_offer": ("next best offer", "下一最佳推荐"),
    "wecom": ("WeCom one-to-one", "企业微信一对一"),
    "group": ("WeCom group", "社群"),
    "app": ("official account / app", "公众号 / App"),
    "sms": ("SMS", "短信"),
    "platinum": ("platinum", "白金"),
    "gold": ("gold", "黄金"),
    "regular": ("regular", "普通"),
    "no purchase in 12 months": ("no purchase in 12 months", "12 个月内未购买"),
    "total": ("total", "合计"),
    # what a week's list left out (closedloop.contacts.ContactList.dropped)
    "excluded": ("customers in a holdout", "对照组客户（不联络）"),
    "unreachable": ("customers reachable on no channel", "无任何可达渠道的客户"),
    "no_channel": (
        "contacts with none of the rule's channels reachable",
        "规则渠道均不可达的联络",
    ),
    "duplicate": ("contacts of a type already chosen", "同类型已选的联络"),
    "over_cap": ("contacts over the weekly cap", "超出每周上限的联络"),
}

#: why a customer is on the week's list (closedloop.contacts), per rule, English and Chinese;
#: ``{name}`` the values the rule fills in (numbers and dates already formatted; ``level`` and
#: tiers in the same language, through :func:`contact_word`)
CONTACT_REASONS: dict[str, dict[str, str]] = {
    "onboarding": {
        "en": "onboarding touch {step} of {n}: day {day} after joining on {joined}",
        "zh": "新客跟进第 {step} 次（共 {n} 次）：{joined} 入会后第 {day} 天",
    },
    "birthday": {"en": "birthday on {date}", "zh": "{date} 生日"},
    "anniversary": {
        "en": "member anniversary on {date}: {years} year since joining on {joined}",
        "zh": "{date} 入会周年：自 {joined} 入会已满 {years} 年",
    },
    "anniversaries": {
        "en": "member anniversary on {date}: {years} years since joining on {joined}",
        "zh": "{date} 入会周年：自 {joined} 入会已满 {years} 年",
    },
    "winback": {
        "en": "{level}: orders {orders_prev} → {orders_now} and spend {revenue_prev} →"
        " {revenue_now} against the previous period; {recency} days since the last purchase",
        "zh": "{level}：与上期相比，订单 {orders_prev} → {orders_now}，消费 {revenue_prev} →"
        " {revenue_now}；距上次购买 {recency} 天",
    },
    "winback_lapsed": {
        "en": "{level}: no purchase in the last two periods, {recency} days since the last one",
        "zh": "{level}：近两期均无购买，距上次购买 {recency} 天",
    },
    "upgrade": {
        "en": "{tier} member {gap} short of {next} ({share} of the {threshold} threshold);"
        " {chance} chance in {days} days at their pace",
        "zh": "{tier}会员距{next}还差 {gap}（为门槛 {threshold} 的 {share}）；按其消费节奏"
        " {days} 天内达到的概率为 {chance}",
    },
    "points_expiring": {
        "en": "{points} points expire by {date} (balance {balance})",
        "zh": "{points} 积分将于 {date} 前过期（余额 {balance}）",
    },
    "next_best_offer": {
        "en": "bought {items} since {since}; {confidence} of baskets with it also hold {offer}"
        " (lift {lift})",
        "zh": "自 {since} 起购买过 {items}；含它的购物篮中 {confidence} 也含 {offer}"
        "（提升度 {lift}）",
    },
}

#: the default offers of the contact rules (:data:`closedloop.contacts.RULES`), English and
#: Chinese; an offer of a replaced rule table is shown as written
CONTACT_OFFERS: dict[str, tuple[str, str]] = {
    "onboarding": ("welcome series: this step's message", "新客欢迎系列：本节点的消息"),
    "birthday": ("birthday gift: double points all week", "生日礼：整周双倍积分"),
    "points_expiring": (
        "use your points before they expire: redeem in store or in the app",
        "积分即将过期，请尽快使用：可在门店或 App 兑换",
    ),
    "winback_light": ("we miss you: 5 yuan off the next order", "想念您：下一单立减 5 元"),
    "winback_medium": ("10 yuan off an order over 50, 14 days", "满 50 减 10 元，14 天内有效"),
    "winback_heavy": (
        "personal call: 20 yuan off and free delivery; ask what went wrong",
        "专人致电：立减 20 元并免配送费；了解哪里做得不好",
    ),
    "upgrade": ("bonus points on the next two orders", "接下来两单赠送额外积分"),
    "anniversary": ("member anniversary thank-you coupon", "入会周年感谢券"),
    "audience": ("news and an offer on what they bought", "所购商品的新品资讯与优惠"),
    "next_best_offer": ("a coupon for", "优惠券适用于"),
}


def contact_word(key: str, language: Language = "en") -> str:
    """A contact rule, channel or member tier in ``language`` (other text as it is)."""
    en, zh = CONTACT_WORDS.get(key, (key, key))
    return zh if language == "zh" else en


def contact_reason(key: str, language: Language = "en") -> str:
    """The template of a contact rule's reason (:data:`CONTACT_REASONS`) in ``language``."""
    return CONTACT_REASONS[key]["zh" if language == "zh" else "en"]


def contact_offer(rule: str, offer: str, language: Language = "en") -> str:
    """A contact rule's offer in ``language``: the rule's default offer (:data:`CONTACT_OFFERS`)
    in Chinese for ``zh``; any other offer text as it is written."""
    en, zh = CONTACT_OFFERS.get(rule, (offer, offer))
    return zh if language == "zh" and offer == en else offer


#: table headers as the report shows them, English and Chinese (never a snake_case name)
COLUMNS: dict[str, tuple[str, str]] = {
    "contact_type": ("Contact type", "联络类型"),
    "contact_rule": ("Trigger", "触发规则"),
    "member_tier": ("Member tier", "会员等级"),
    "channel_wecom": ("WeCom one-to-one", "企业微信一对一"),
    "channel_group": ("WeCom group", "社群"),
    "channel_app": ("Official account / app", "公众号 / App"),
    "channel_sms": ("SMS", "短信"),
    "contacts": ("Contacts", "联络数"),
    "contacts_total": ("Total", "合计"),
    "contact_share": ("Share of contacts", "联络占比"),
    "example": ("Example reason", "示例理由"),
    "file": ("File", "文件"),
    "expected_by_now": ("Expected by now", "截至目前应达"),
    "week": ("Week of", "周（起始日）"),
    "purchases": ("Purchases", "购买次数"),
    "new_buyers": ("First-time buyers", "首次购买客户"),
    "projected": ("Projected at the end, 95% interval", "期末预计（95% 区间）"),
    "target": ("Target", "目标"),
    "actual": ("Actual", "实际"),
    "target_value": ("Target value", "目标值"),
    "planned": ("Planned", "计划值"),
    "status": ("Status", "状态"),
    "p_met": ("P(met)", "达成概率"),
    "basis": ("Measured on", "口径"),
    "arm": ("Arm", "实验组"),
    "metric": ("Metric", "指标"),
    "customers": ("Customers", "客户数"),
    "mean": ("Arm mean", "实验组均值"),
    "control_mean": ("Holdout mean", "对照组均值"),
    "rel_lift": ("Relative lift", "相对提升"),
    "rel_interval": ("Relative lift, 95% interval", "相对提升 95% 区间"),
    "abs_lift": ("Uplift (percentage points)", "提升（百分点）"),
    "abs_interval": ("Uplift, 95% interval (percentage points)", "提升 95% 区间（百分点）"),
    "p_better": ("P(better than holdout)", "优于对照概率"),
    "expected_loss": ("Expected loss per customer", "每位客户的期望损失"),
    "incremental": ("Incremental", "增量"),
    "cost": ("Cost", "成本"),
    "incremental_revenue": ("Incremental revenue", "增量销售额"),
    "incremental_margin": ("Incremental margin", "增量毛利"),
    "margin": ("Margin", "毛利率"),
    "roi": ("ROI", "ROI"),
    "roi_interval": ("ROI, 95% interval", "ROI 95% 区间"),
    "p_target": ("P(ROI ≥ target)", "达标概率"),
    "segment": ("Segment", "分群"),
    "small": ("Small sample", "样本小"),
    "rank": ("Rank", "排名"),
    "stage": ("Stage", "阶段"),
    "tier": ("Tier", "层级"),
    "customer_share": ("Share of customers", "客户占比"),
    "revenue": ("Revenue", "销售额"),
    "revenue_share": ("Share of revenue", "销售额占比"),
    "avg_ticket": ("Average ticket", "客单价"),
    "avg_frequency": ("Purchases per customer", "平均购买次数"),
    "threshold": ("Spend threshold", "消费门槛"),
    "rule": ("Rule", "规则"),
    "support": ("Support", "支持度"),
    "confidence": ("Confidence", "置信度"),
    "lift": ("Lift", "提升度"),
    "field": ("What changes", "调整项"),
    "to": ("To", "调整为"),
    "reason": ("Why", "理由"),
    "table": ("Table", "表"),
    "source": ("File", "文件"),
    "rows_read": ("Rows read", "读取行数"),
    "rows_kept": ("Rows kept", "保留行数"),
    "rows_dropped": ("Rows dropped", "剔除行数"),
    "refunds": ("Refund rows", "退款行数"),
    "outliers": ("Outliers", "异常值"),
    "assigned_covered": ("Assigned customers found", "找到的分组客户数"),
    "coverage": ("Coverage", "覆盖率"),
    "first_date": ("First date", "最早日期"),
    "last_date": ("Last date", "最晚日期"),
    "after_asof": ("Rows after the as-of day", "截止日之后的行数"),
    "baseline": ("Baseline (change)", "基线（变化）"),
    "days": ("Days after the period", "活动结束后天数"),
    "window": ("Window", "时间窗"),
    "abs_lift_value": ("Lift per customer", "人均提升"),
    "lift_interval": ("Lift, 95% interval", "提升 95% 区间"),
    "en": ("English", "英文"),
    "zh": ("Chinese", "中文"),
    # the member-health report
    "kpi": ("KPI", "指标"),
    "gap": ("Gap to target", "与目标差距"),
    "shortfall": ("Short of target (− ahead)", "距目标缺口（负数为超出）"),
    "all": ("All members", "全部会员"),
    "new": ("New", "新客"),
    "existing": ("Existing", "老客"),
    "not_yet": ("Not bought yet", "尚未购买"),
    "members": ("Members", "会员数"),
    "member_share": ("Member share", "会员占比"),
    "online_rate": ("Online rate", "在线率"),
    "active_members": ("Active members", "活跃会员数"),
    "active_rate": ("Active rate", "活跃率"),
    "purchase_frequency": ("Orders per active member", "购买频次"),
    "contribution": ("Contribution", "会员贡献"),
    "contribution_per_member": ("Contribution per member", "人均贡献"),
    "repurchase_rate": ("Repurchase rate", "复购率"),
    "items_per_basket": ("Items per basket", "连带率"),
    "churn_rate": ("Churn rate", "流失率"),
    "recruits": ("Recruits", "招募数"),
    "conversion": ("Join → first purchase", "首购转化率"),
    "orders": ("Orders", "订单数"),
    "anonymous_orders": ("Anonymous receipts", "匿名小票数"),
    "reach_wecom": ("Reach: WeCom", "企微触达率"),
    "reach_group": ("Reach: group", "社群触达率"),
    "reach_app": ("Reach: app", "App 触达率"),
    "reach_sms": ("Reach: SMS", "短信触达率"),
    "reach_online": ("Reach online", "线上触达率"),
    "month": ("Month", "月份"),
    "buyers": ("Buyers", "购买客户数"),
    "orders_per_buyer": ("Orders per buyer", "人均单数"),
    "ticket": ("Ticket", "客单价"),
    "level": ("Churn level", "流失程度"),
    "before": ("A quarter ago", "一季度前"),
    "now": ("Now", "当前"),
    "change": ("Change", "变化"),
    "revenue_now": ("Revenue, last 90 days", "近 90 天销售额"),
    "store": ("Store", "门店"),
    "channel": ("Channel", "渠道"),
    "guide": ("Guide", "导购"),
    "city": ("City", "城市"),
    "revenue_before": ("Revenue before", "上期销售额"),
    "revenue_after": ("Revenue now", "本期销售额"),
    "customers_before": ("Buyers before", "上期购买客户数"),
    "customers_after": ("Buyers now", "本期购买客户数"),
    "heads_effect": ("Heads effect", "人数效应"),
    "frequency_effect": ("Frequency effect", "频次效应"),
    "ticket_effect": ("Ticket effect", "客单价效应"),
}

#: target names as the report shows them
TARGET_NAMES: dict[str, tuple[str, str]] = {
    "conversion_rate": ("conversion rate", "转化率"),
    "visit_rate": ("visit rate", "到访率"),
    "relative_lift": ("relative lift", "相对提升"),
    "incremental_revenue": ("incremental revenue", "增量销售额"),
    "roi": ("ROI", "ROI"),
    "funnel": ("funnel", "漏斗"),
    "orders_per_customer": ("orders per customer", "人均购买次数"),
    "avg_ticket": ("average ticket", "客单价"),
    "second_purchase_rate": ("second-purchase rate", "二次购买率"),
    "recruits": ("recruits", "招募数"),
    "first_conversion_rate": ("first conversion of recruits", "新会员首购转化率"),
    "leads": ("leads", "线索数"),
}

#: outcome metrics (one value per assigned customer) as the report names them
METRIC_NAMES: dict[str, tuple[str, str]] = {
    "converted": ("conversion", "转化率"),
    "revenue": ("revenue per customer", "人均销售额"),
    "visited": ("visit rate", "到访率"),
    "orders": ("orders per customer", "人均购买次数"),
    "ticket": ("average ticket", "客单价"),
    "second_purchase": ("second-purchase rate", "二次购买率"),
    "recruited": ("recruits (share who joined)", "招募（入会比例）"),
    "first_conversion": ("first conversion (joined and bought)", "首购转化（入会并购买）"),
    "lead": ("leads (share reaching the stage)", "线索（到达该阶段的比例）"),
}

#: funnel stages and campaign tables, as the report names them
STAGES = {"touch": "触达", "visit": "到访", "register": "注册", "purchase": "购买"}
TABLE_NAMES = {
    "transactions": "交易",
    "assignments": "分组名单",
    "outcomes": "活动结果",
    "events": "漏斗事件",
    "customers": "客户",
    "items": "商品",
    "receipts": "匿名小票",
    "points": "积分流水",
}

#: a probability in words, from the top: (lowest probability, English, Chinese)
LIKELIHOOD = (
    (0.99, "almost certain", "几乎确定"),
    (0.90, "very likely", "很可能"),
    (0.70, "likely", "较可能"),
    (0.30, "a coin flip", "五五开"),
    (0.10, "unlikely", "不太可能"),
    (0.01, "very unlikely", "很不可能"),
    (0.0, "almost ruled out", "几乎不可能"),
)


def column(key: str, language: Language = "en") -> str:
    """A table header in ``language`` (from :data:`COLUMNS`; other names translated as words)."""
    if key in COLUMNS:
        return COLUMNS[key][language == "zh"]
    words = key.replace("_", " ")
    return translate(words, language) if language == "zh" else words[:1].upper() + words[1:]


def target_name(key: str, language: Language = "en") -> str:
    """A target's name: ``conversion_rate`` -> "conversion rate" / "转化率"; ``funnel_visit`` ->
    "funnel: visit" / "漏斗：到访"."""
    if key.startswith("funnel_"):
        stage = key.removeprefix("funnel_")
        return f"漏斗：{stage_name(stage, 'zh')}" if language == "zh" else f"funnel: {stage}"
    en, zh = TARGET_NAMES.get(key, (key.replace("_", " "), translate(key, "zh")))
    return zh if language == "zh" else en


def metric_name(column: str, language: Language = "en") -> str:
    """An outcome metric's name: ``orders`` -> "orders per customer" / "人均购买次数"."""
    en, zh = METRIC_NAMES.get(column, (column, translate(column, "zh")))
    return zh if language == "zh" else en


def stage_name(stage: str, language: Language = "en") -> str:
    return STAGES.get(stage, stage) if language == "zh" else stage


def table_name(table: str, language: Language = "en") -> str:
    return TABLE_NAMES.get(table, table) if language == "zh" else table


def likelihood(p: float, language: Language = "en") -> str:
    """A probability in words: 0.9994 -> "almost certain", 0.5 -> "a coin flip"."""
    for floor, en, zh in LIKELIHOOD:
        if p >= floor:
            return zh if language == "zh" else en
    return LIKELIHOOD[-1][1 + (language == "zh")]


#: the Act step's reasons (closedloop.act), English pattern -> Chinese template
REASONS: tuple[tuple[str, str], ...] = (
    (
        r"P\((?P<arm>.+) beats the holdout on (?P<col>\w+)\) = (?P<p>[\d.]+), below (?P<k>[\d.]+)",
        "{arm} 在{col}上胜过对照组的概率为 {p}，低于 {k}",
    ),
    (
        r"P\((?P<arm>.+) is the best arm on (?P<col>\w+)\) = (?P<p>[\d.]+), below (?P<k>[\d.]+)",
        "{arm} 为{col}最佳分组的概率为 {p}，低于 {k}",
    ),
    (
        r"its lift over the holdout on (?P<col>\w+) cannot be estimated from this data",
        "无法从本数据估计其在{col}上相对对照组的提升",
    ),
    (
        r"missed this cycle: carried forward unchanged \(re-plan it by hand if the target itself"
        r" was wrong\)",
        "本周期未达成：原样沿用（若目标本身有误，请手动重新规划）",
    ),
    (
        r"could not be measured this cycle: carried forward unchanged \(re-plan it by hand if the"
        r" target itself was wrong\)",
        "本周期无法衡量：原样沿用（若目标本身有误，请手动重新规划）",
    ),
    (
        r"met: raised to the (?P<q>\d+%) posterior quantile of (?P<arm>.+)'s conversion"
        r" \(reached 3 times in 4\)",
        "已达成：提高到 {arm} 转化率的 {q} 后验分位数（四次中有三次能达到）",
    ),
    (
        r"met: raised to the (?P<q>\d+%) posterior quantile of (?P<arm>.+)'s relative lift on"
        r" (?P<col>\w+) \(reached 3 times in 4\)",
        "已达成：提高到 {arm} 在{col}上相对提升的 {q} 后验分位数（四次中有三次能达到）",
    ),
    (
        r"stop or redesign: no treated arm beats the holdout with P >= (?P<k>[\d.]+); no arm is"
        r" carried into the next cycle",
        "停止或重新设计：没有实验组以 ≥ {k} 的概率胜过对照组；下一周期不沿用任何分组",
    ),
    (
        r"segments where a kept arm beats the holdout with P >= (?P<k>[\d.]+): (?P<list>.+)",
        "保留分组以 ≥ {k} 的概率胜过对照组的分群：{list}",
    ),
    (
        r"its effect did not last: P\((?P<arm>.+) beats the holdout on (?P<col>\w+) in the"
        r" (?P<d>\d+) days after the period\) = (?P<p>[\d.]+), below (?P<k>[\d.]+), while it"
        r" lasted for (?P<list>.+)",
        "效果没有持续：活动结束后 {d} 天内 {arm} 在{col}上胜过对照组的概率为 {p}，低于 {k}；"
        "而 {list} 的效果持续",
    ),
    (
        r"an interim Check \(data as of (?P<asof>[\d-]+)\): what the Act step would decide if the"
        r" period ended that day; the Check on (?P<end>[\d-]+) writes the plan to run",
        "期中检查（数据截至 {asof}）：若周期在当天结束，处理环节会作出的决定；{end} 的检查才写出"
        "要运行的计划",
    ),
    (r"the next cycle", "下一周期"),
    # the sample-ratio check's sentences (closedloop.lift.srm_check)
    (
        r"Sample ratio as planned: (?P<split>.+) of (?P<total>[\d,]+) customers against"
        r" (?P<plan>.+) \(chi-square (?P<x>[\d.]+), (?P<df>\d+) df, p = (?P<p>[\d.e+-]+)\)\.",
        "样本比例符合计划：{total} 位客户的分组比例为 {split}，计划为 {plan}"
        "（卡方 {x}，自由度 {df}，p = {p}）。",
    ),
    (
        r"Sample-ratio mismatch: the arms hold (?P<split>.+) of (?P<total>[\d,]+) customers against"
        r" a planned (?P<plan>.+) \(chi-square (?P<x>[\d.]+), (?P<df>\d+) df, p = (?P<p>[\d.e+-]+)"
        r" < (?P<a>[\d.e+-]+)\)\. Assignment or data collection is broken; do not trust the lift"
        r" until the cause is found\.",
        "样本比例与计划不符：{total} 位客户的分组比例为 {split}，计划为 {plan}（卡方 {x}，"
        "自由度 {df}，p = {p} < {a}）。分组或数据采集有误；查明原因前不要相信提升结果。",
    ),
)


def reason(text: str, language: Language = "en") -> str:
    """An Act reason (as :mod:`closedloop.act` words it) in ``language``; the arm and segment
    names stay as written, outcome columns are named in Chinese."""
    if language != "zh":
        return text
    for pattern, template in REASONS:
        found = re.fullmatch(pattern, text)
        if found:
            values = found.groupdict()
            if "col" in values:
                col = values["col"]
                values["col"] = (
                    metric_name(col, "zh") if col in METRIC_NAMES else translate(col, "zh")
                )
            return template.format(**values)
    return translate(text, language)


def change_field(name: str, language: Language = "en") -> str:
    """What an Act change touches, in words: ``arms.sms`` -> "arm sms" / "实验组 sms"."""
    zh = language == "zh"
    head, _, rest = name.partition(".")
    if head == "arms":
        return f"实验组 {rest}" if zh else f"arm {rest}"
    if head == "targets":
        shown = target_name(rest.partition(".")[0], language)
        return f"目标：{shown}" if zh else f"target: {shown}"
    words = {"audience.segments": ("audience", "目标人群"), "period": ("period", "活动期")}
    words["status"] = ("status", "状态")
    en, zh_word = words.get(name, (name, translate(name, "zh")))
    return zh_word if zh else en


def change_to(value: str, language: Language = "en") -> str:
    """The new value of an Act change in ``language`` (dropped, carried, redesign, provisional,
    dates)."""
    if language != "zh":
        return value
    words = {"dropped": "停用", "carried": "沿用", "redesign": "重新设计", "provisional": "暂定"}
    return words.get(value, value.replace(" to ", " 至 "))


@functools.cache
def _pattern() -> tuple[re.Pattern, dict[str, str]]:
    words = {t.en.lower(): t.zh for t in TERMS.values()}
    words.update({k.lower().replace("_", " "): v for k, v in PHRASES.items()})
    alternatives = sorted(words, key=len, reverse=True)
    # a space in a phrase also matches an underscore ("target_value"); a word inside a data name
    # such as about_to_sleep is left alone
    body = "|".join(re.escape(w).replace(r"\ ", "[ _]") for w in alternatives)
    return re.compile(rf"(?<![\w]){'(?:' + body + ')'}(?![\w])", re.IGNORECASE), words


def translate(text: str, language: Language = "en") -> str:
    """``text`` in ``language``: known phrases and method terms replaced, longest first.

    English is returned as is. Names that come from the data (arms, segments) stay as they are.
    """
    if language != "zh" or not text:
        return text
    pattern, words = _pattern()
    return pattern.sub(lambda m: words[m.group(0).lower().replace("_", " ")], text)


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


#: one plain sentence per probability the report shows, ``{p}`` the percentage and ``{value}`` the
#: number as shown (P(met), P(better), P(best), expected loss), in English and Chinese
PROBABILITIES: dict[str, dict[str, str]] = {
    "p_met": {
        "en": "P(met) {value}: given the data, the chance that the true value reached the target"
        " is {p} (for the relative lift: the primary arm's true lift over the holdout).",
        "zh": "达成概率 {value}：根据数据，真实值达到目标的概率为 {p}（相对提升一项：主要实验组相对对照组的真实提升）。",
    },
    "p_met_interim": {
        "en": "P(met) {value}: given the data so far, the chance of ending the period at or above"
        " the target is {p}, at the pace so far.",
        "zh": "达成概率 {value}：根据目前的数据，按目前的进度，期末达到或超过目标的概率为 {p}。",
    },
    "p_better": {
        "en": "P(better) {value}: given the data, the chance that this arm's true mean is above"
        " the holdout's is {p}.",
        "zh": "优于对照概率 {value}：根据数据，该方案的真实均值高于对照组的概率为 {p}。",
    },
    "p_best": {
        "en": "P(best) {value}: given the data, the chance that this arm has the highest true"
        " mean of all the arms, the holdout included, is {p}.",
        "zh": "最佳概率 {value}：根据数据，该方案的真实均值在所有方案（含对照组）中最高的概率为 {p}。",
    },
    "expected_loss": {
        "en": "Expected loss {value}: if this arm is in fact worse than the holdout, choosing it"
        " costs this much per customer, averaged over what the data allow.",
        "zh": "期望损失 {value}：若该方案实际不如对照组，选择它平均每位客户损失这么多（按数据允许的各种情况加权平均）。",
    },
}


#: the stopping rule's decision in words (:mod:`closedloop.early_stop`), per action: ``{arm}``,
#: ``{loss}`` and ``{threshold}`` (money per customer), ``{p}`` P(beats the holdout), ``{day}``,
#: ``{min_days}``, ``{customers}``, ``{min_customers}``, ``{dropped}`` (arms), ``{floor}`` the
#: certainty asked
STOPPING: dict[str, dict[str, str]] = {
    "wait": {
        "en": "Stopping rule: too early to decide (day {day} of at least {min_days}, {customers}"
        " customers in the smallest arm of at least {min_customers}); the campaign runs on.",
        "zh": "提前停止规则：尚早，不作决定（第 {day} 天，至少需 {min_days} 天；最小分组 {customers}"
        " 人，至少需 {min_customers} 人）；活动继续。",
    },
    "ship": {
        "en": "Stopping rule: stop early and ship {arm}. Its expected loss is {loss} per customer,"
        " below the {threshold} threshold, and it beats the holdout with P {p} (at least {floor}"
        " asked).",
        "zh": "提前停止规则：提前结束并推广 {arm}。其期望损失为每位客户 {loss}，低于阈值"
        " {threshold}；优于对照组的概率 {p}（要求至少 {floor}）。",
    },
    "stop": {
        "en": "Stopping rule: stop the campaign. Every arm is clearly worse than the holdout"
        " ({dropped}: each beats it with P at most {ceiling}).",
        "zh": "提前停止规则：停止活动。所有实验组都明显不如对照组（{dropped}：优于对照组的概率均不超过"
        " {ceiling}）。",
    },
    "continue": {
        "en": "Stopping rule: continue. The leading arm, {arm}, has an expected loss of {loss}"
        " per customer (threshold {threshold}) and beats the holdout with P {p} ({floor} asked to"
        " ship).",
        "zh": "提前停止规则：继续。领先的 {arm} 期望损失为每位客户 {loss}（阈值 {threshold}），"
        "优于对照组的概率 {p}（推广需至少 {floor}）。",
    },
    "dropped": {
        "en": "Stop {dropped}: clearly worse than the holdout (P of beating it at most {ceiling}).",
        "zh": "停用 {dropped}：明显不如对照组（优于对照组的概率不超过 {ceiling}）。",
    },
}


def explain(key: str, value: float, language: Language = "en") -> str:
    """The plain sentence for a probability (``p_met``, ``p_met_interim``, ``p_better``,
    ``p_best``) or an
    ``expected_loss``, with its value, e.g. ``explain("p_met", 0.7)`` -> "P(met) 0.70: given the
    data, the chance that the true value reached the target is 70% ..." (worded so that no
    article has to agree with the number: "an 88%")."""
    template = PROBABILITIES[key][language]
    if key == "expected_loss":
        return template.format(value=f"{value:.3g}", p=f"{value:.3g}")
    return template.format(value=f"{value:.2f}", p=f"{value:.0%}")
