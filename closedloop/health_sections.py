"""The member-health report, section by section: what each shows of a :class:`~closedloop.health.Health`.

One function per section (the KPI tree against targets, trends month by month, the pyramid over
time, the churn screen, why revenue moved, the store table), each taking the check and the
report's language (and ``out_dir`` where figures are saved) and returning the objects to
display: ``display(*health_sections.kpi_tree(health, language, out_dir))``. All wording comes
from :mod:`closedloop.glossary`; every value from the data is shown as text (:mod:`closedloop.page`).
"""

from __future__ import annotations

import pandas as pd

from closedloop import page
from closedloop.figures import kpi as kpi_figures
from closedloop.figures import rfm as rfm_figures
from closedloop.glossary import column, label, say, table_name, tier_name, translate
from closedloop.health import LOWER_IS_BETTER, Health
from closedloop.kpi import HOME_DAYS

__all__ = [
    "SECTIONS",
    "churn_screen",
    "header",
    "kpi_tree",
    "pyramid",
    "revenue_moved",
    "stores",
    "trends",
]

#: the numbered sections, in the report's order (glossary keys)
SECTIONS = (
    "kpi_tree",
    "trends",
    "pyramid_over_time",
    "churn_screen",
    "revenue_moved",
    "store_table",
)
#: KPIs shown as percentages
SHARES = {
    "member_share",
    "online_rate",
    "repurchase_rate",
    "churn_rate",
    "active_rate",
    "conversion",
}


def header(health: Health, language: str = "en", run_id: str = "") -> tuple:
    """Style, title and run line; the verdict in a few sentences; the files read."""
    plan, (start, end) = health.plan, health.period
    t = _words(language)
    card = health.scorecard
    month = f"{start:%Y-%m}"
    if card.empty:
        verdict = [say("no_targets", language, file="health.yaml")]
    else:
        met = int((card["status"] == "met").sum())
        verdict = [say("targets_met", language, met=met, n=len(card), month=month)]
        missed = card[card["status"] == "missed"]
        if len(missed):
            row = missed.loc[missed["gap"].idxmax()]
            verdict.append(
                say(
                    "kpi_furthest_behind",
                    language,
                    kpi=_kpi(row["kpi"], language),
                    actual=_kpi_value(row["kpi"], row["actual"], plan.currency),
                    target=_kpi_value(row["kpi"], row["target_value"], plan.currency),
                )
            )
    if health.stores is not None and health.stores["gap"].notna().any():
        worst = health.stores["gap"].idxmax()
        verdict.append(
            say(
                "furthest_behind",
                language,
                by=t(health.by),
                group=_group(worst, language),
                gap=page.percent(health.stores.loc[worst, "gap"]),
            )
        )
    if health.anonymous_orders:
        verdict.append(say("anonymous", language, n=f"{health.anonymous_orders:,}"))
    if health.stores is None:
        verdict.append(say("no_by", language, by=t(health.by)))
    parts = [
        page.css(),
        page.text(
            "# {title}：{name}" if language == "zh" else "# {title}: {name}",
            title=_capital(label("member_health", language)),
            name=plan.name or plan.campaign,
        ),
        page.text(
            "**{c}** · {period_w} {start} {to} {end} · {asof_w} {asof} · {run_w} `{run}`",
            c=plan.campaign,
            period_w=t("month"),
            start=start.date(),
            to=t("to"),
            end=end.date(),
            asof_w=t("data as of"),
            asof=health.asof.date(),
            run_w=t("run"),
            run=run_id,
        ),
        page.paragraphs(verdict, "verdict"),
    ]
    if not health.quality.empty:
        quality = health.quality.assign(
            table=health.quality["table"].map(lambda name: table_name(name, language)),
            **{  # counts with thousands separators, as in the campaign report
                c: health.quality[c].map(page.number)
                for c in health.quality.columns
                if c.startswith("rows")
            },
        )
        files = _table(quality, "data-quality", "files read and rows kept", language)
        parts.append(page.details(label("data_quality", language), files, "data-quality-status"))
    return tuple(parts)


def kpi_tree(health: Health, language: str = "en", out_dir=".") -> tuple:
    """The scorecard (each target: actual, target, gap, met / missed), its figure, and the tree
    for all, new and existing members."""
    currency = health.plan.currency
    parts = [_heading(health, "kpi_tree", language)]
    if not health.scorecard.empty:
        card = health.scorecard.copy()
        shown = [
            _kpi_value(k, v, currency) for k, v in zip(card["kpi"], card["actual"], strict=True)
        ]
        goal = [
            _kpi_value(k, v, currency)
            for k, v in zip(card["kpi"], card["target_value"], strict=True)
        ]
        card["actual"], card["target_value"] = shown, goal
        # the shortfall as a share of the target: positive behind, negative ahead
        card["gap"] = card["gap"].map(lambda g: page.percent(g, signed=True))
        card = card.rename(columns={"gap": "shortfall"})
        card["kpi"] = [_kpi(k, language) for k in card["kpi"]]
        card["status"] = card["status"].map(lambda s: translate(s, language))
        parts.append(
            _table(card, "scorecard", "the KPI tree for the month against its targets", language)
        )
        fig = kpi_figures.against_targets(
            health.tree["all"],
            health.plan.target_values,
            language=language,
            lower_is_better=tuple(LOWER_IS_BETTER),
        )
        caption = "each KPI as a share of its target: 1 is on target"
        parts.append(page.figure(fig, "kpi-targets", out_dir, caption, language))
    tree = health.tree.drop(columns="term").copy()
    for name in ("all", "new", "existing", "not_yet"):
        tree[name] = [
            _kpi_value(k, v, currency) for k, v in zip(tree.index, tree[name], strict=True)
        ]
    tree.insert(0, "kpi", [_kpi(k, language) for k in tree.index])
    caption = (
        "KPI tree: all members = new + existing + not bought yet (members, active members,"
        " contribution and member share add up; rates are each column's own)"
    )
    parts.append(_table(tree, "kpi-tree", caption, language))
    return tuple(parts)


def trends(health: Health, language: str = "en", out_dir=".") -> tuple:
    """Buyers, orders per buyer, ticket and member share month by month, figure and table."""
    trend = health.trend
    parts = [
        _heading(health, "trends", language),
        page.figure(
            kpi_figures.monthly_trend(trend, language=language),
            "trends",
            out_dir,
            "the last 12 months, members and anonymous receipts",
            language,
        ),
    ]
    if health.asof != (health.asof + pd.offsets.MonthEnd(0)):
        parts.append(page.sentence(say("partial_month", language, asof=health.asof.date())))
    currency = health.plan.currency
    shown = pd.DataFrame(
        {
            "month": [f"{m:%Y-%m}" for m in trend.index],
            "buyers": trend["buyers"].map(page.number),
            "orders": trend["orders"].map(page.number),
            "orders_per_buyer": trend["frequency"].map(lambda v: page.number(round(v, 2))),
            "ticket": trend["ticket"].map(lambda v: page.money(v, currency)),
            "revenue": trend["revenue"].map(lambda v: page.money(v, currency)),
            "anonymous_orders": trend["anonymous_orders"].map(page.number),
            "member_share": trend["member_share"].map(page.percent),
        }
    )
    parts.append(_table(shown, "trend", "", language))
    return tuple(parts)


def pyramid(health: Health, language: str = "en", out_dir=".") -> tuple:
    """Revenue by pyramid tier per month (tiers fixed over the last year)."""
    over_time = health.pyramid.copy()
    over_time["tier"] = over_time["tier"].cat.rename_categories(
        lambda t: tier_name(str(t), language)
    )
    fig = rfm_figures.revenue_by_tier(over_time)
    caption = "last 12 months, revenue by tier (tiers fixed over the last year)"
    return (
        _heading(health, "pyramid_over_time", language),
        page.figure(fig, "pyramid-over-time", out_dir, caption, language),
    )


def churn_screen(health: Health, language: str = "en", out_dir=".") -> tuple:
    """Customers by churn level a quarter ago and now, the change, and the quarter's revenue."""
    screen = health.churn
    levels = [label(f"churn_{level}", language) for level in screen.index]
    fig = kpi_figures.churn_screen(screen, levels, language=language)
    before = screen.attrs["before"].date()
    table = pd.DataFrame(
        {
            "level": levels,
            "before": screen["before"].map(page.number).to_numpy(),
            "now": screen["now"].map(page.number).to_numpy(),
            "change": screen["change"].map(lambda v: f"{v:+,d}").to_numpy(),
            "revenue_now": screen["revenue_now"]
            .map(lambda v: page.money(v, health.plan.currency))
            .to_numpy(),
        }
    )
    heavy = f"{int(screen.loc['heavy', 'change']):+,d}" if "heavy" in screen.index else "–"
    return (
        _heading(health, "churn_screen", language),
        page.figure(
            fig,
            "churn-screen",
            out_dir,
            "customers by churn level, now and a quarter ago",
            language,
        ),
        _table(table, "churn-screen", "", language),
        page.sentence(say("screen", language, heavy=heavy, before=before)),
    )


def revenue_moved(health: Health, language: str = "en", out_dir=".") -> tuple:
    """This month's revenue against the compared period, split into heads, frequency and
    ticket: a sentence with the totals, then the figure and table by tier and by store."""
    currency = health.plan.currency
    total = health.moves.attrs["total"]
    (b0, b1), change = health.compared, total["change"]
    relative = change / total["revenue_before"] if total["revenue_before"] else float("nan")

    def signed(v: float) -> str:
        return ("+" if v > 0 else "") + page.money(v, currency)

    parts = [
        _heading(health, "revenue_moved", language),
        page.sentence(
            say(
                "revenue_moved",
                language,
                before=page.money(total["revenue_before"], currency),
                b0=b0.date(),
                b1=b1.date(),
                after=page.money(total["revenue_after"], currency),
                change=f"{signed(change)}, {page.percent(relative, signed=True)}",
                heads=signed(total["heads"]),
                frequency=signed(total["frequency"]),
                ticket=signed(total["ticket"]),
            )
        ),
    ]
    groups = [("tier", health.moves)]
    if health.store_moves is not None:
        groups.append((health.by, health.store_moves))
    for name, moves in groups:
        shown = moves.copy()
        shown.index = [
            tier_name(str(g), language) if name == "tier" else str(g) for g in shown.index
        ]
        shown.index.name = translate(name, language)
        fig = kpi_figures.revenue_change(shown, language=language)
        parts.append(
            page.figure(
                fig,
                f"revenue-change-{name}",
                out_dir,
                "each group's change split into heads, frequency and ticket",
                language,
            )
        )
        table = pd.DataFrame(
            {
                name: shown.index,
                "customers_before": moves["customers_before"].map(page.number).to_numpy(),
                "customers_after": moves["customers_after"].map(page.number).to_numpy(),
                "revenue_before": moves["revenue_before"]
                .map(lambda v: page.money(v, currency))
                .to_numpy(),
                "revenue_after": moves["revenue_after"]
                .map(lambda v: page.money(v, currency))
                .to_numpy(),
                "change": moves["change"].map(signed).to_numpy(),
                "heads_effect": moves["heads"].map(signed).to_numpy(),
                "frequency_effect": moves["frequency"].map(signed).to_numpy(),
                "ticket_effect": moves["ticket"].map(signed).to_numpy(),
            }
        )
        parts.append(_table(table, f"revenue-change-{name}", "", language))
    return tuple(parts)


def stores(health: Health, language: str = "en") -> tuple:
    """The tree per store (or channel, city, guide, tier), furthest behind target first; or,
    when the data have no such column, one sentence saying the store parts are left out."""
    heading = _heading(health, "store_table", language)
    if health.stores is None:
        return heading, page.sentence(say("no_by", language, by=translate(health.by, language)))
    table = health.stores
    currency = health.plan.currency
    shown = pd.DataFrame({health.by: [_group(str(v), language) for v in table.index]})
    shown["gap"] = table["gap"].map(page.percent).to_numpy()
    for name in table.columns.drop("gap"):
        values = table[name].tolist()  # Python numbers: counts get their separators
        shown[name] = [_kpi_value(name, v, currency) for v in values]
    parts = [heading]
    if table.attrs.get("from") == "transactions":  # split by where members buy: the home rule
        words = translate(health.by, language)
        parts.append(
            page.sentence(
                say(
                    "home_store",
                    language,
                    by=words,
                    column=f"home_{health.by}",
                    joined=f"join_{health.by}",
                    days=HOME_DAYS,
                )
            )
        )
        unplaced = table.attrs.get("unplaced_recruits", 0)
        if unplaced:
            parts.append(
                page.sentence(
                    say(
                        "no_conversion_by",
                        language,
                        by=words,
                        n=f"{unplaced:,}",
                        column=f"join_{health.by}",
                    )
                )
            )
    return *parts, _table(
        shown,
        "store-table",
        "gap: the sum of each KPI's shortfall as a share of its target (ahead counts 0);"
        " furthest behind first",
        language,
    )


def _group(value: str, language: str) -> str:
    """A store (or channel, city, guide, tier) as the report names it: the members placed in
    none, kpi's "(none)", are （无） in Chinese."""
    return "（无）" if language == "zh" and value == "(none)" else value


def _kpi(name: str, language: str) -> str:
    words = column(name, language)
    return words + (
        f" ({translate('lower is better', language)})" if name in LOWER_IS_BETTER else ""
    )


def _kpi_value(name: str, value, currency: str) -> str:
    """A KPI as the report shows it: shares as percentages, money with its currency, counts
    with separators, frequencies with two decimals."""
    if value is None or pd.isna(value):
        return "–"
    if name in SHARES or name.startswith("reach_"):
        return page.percent(value)
    if name in ("avg_ticket", "contribution", "contribution_per_member", "revenue"):
        return page.money(value, currency)
    if name in ("purchase_frequency", "items_per_basket"):
        return f"{value:.2f}"
    return page.number(value)


def _table(frame: pd.DataFrame, table_id: str, caption: str, language: str):
    shown = frame.copy()
    shown.columns = [column(str(c), language) for c in shown.columns]
    return page.table(shown, table_id, caption, language=language)


def _heading(health: Health, key: str, language: str):
    number = SECTIONS.index(key) + 1
    return page.text("## {n}. {h}", n=number, h=_capital(label(key, language)))


def _capital(words: str) -> str:
    return words[:1].upper() + words[1:]


def _words(language: str):
    return lambda text: translate(text, language)
